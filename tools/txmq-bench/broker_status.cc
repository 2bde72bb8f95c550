#include "tools/txmq-bench/broker_status.h"

#include <chrono>

#include "protocol/src/connection.h"
#include "tools/txmq-bench/bench_error.h"
#include "txmq/version.h"

namespace txmq::bench {

namespace {

constexpr auto kStatusTimeout = std::chrono::seconds(5);

}  // namespace

BrokerStatus::BrokerStatus(const std::string& broker, const std::string& curve_key,
                           const std::string& server_key)
    : broker_(broker) {
  auto keys = curve::LoadClientKeys(curve_key, server_key);
  if (!keys.ok()) throw BenchError(keys.status().ToString());
  net::ConnectionOptions o;
  o.curve = *keys;
  o.broker = broker;
  o.role = wire::Role::ADMIN;
  o.software = std::string("txmq-bench ") + kVersion;
  auto c = net::Connection::Open(o);
  if (!c.ok()) {
    throw BenchError("cannot open an admin connection to " + broker + ": " + c.status().ToString());
  }
  connection_ = std::move(c.value());
}

BrokerStatus::~BrokerStatus() = default;

TxCounters BrokerStatus::Transactions() {
  wire::OutFrame request = connection_->NewRequest();
  request.envelope().setStatus();
  auto reply = connection_->CallSync(std::move(request), kStatusTimeout);
  if (!reply.ok()) {
    throw BenchError("status request to " + broker_ + " failed: " + reply.status().ToString());
  }
  auto t = reply->envelope().getStatusOk().getTransactions();
  return TxCounters{.open = t.getOpen(),
                    .committed = t.getCommitted(),
                    .rolled_back = t.getRolledBack(),
                    .checks_sent = t.getChecksSent(),
                    .answers_commit = t.getAnswersCommit(),
                    .stuck = t.getStuck()};
}

}  // namespace txmq::bench
