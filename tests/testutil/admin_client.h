// Test-side access to the broker's admin and transaction requests, over a
// real client connection.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "protocol/src/connection.h"
#include "protocol/src/message_codec.h"

namespace txmq::testing {

struct TxInfo {
  std::string id;
  wire::TxState state = wire::TxState::PREPARED;
  bool stuck = false;
  std::string group;
  std::string instance;
  uint32_t check_count = 0;
  uint32_t no_producer_checks = 0;
  wire::CheckAnswer last_answer = wire::CheckAnswer::NONE;
  std::string last_error;
  std::string resolved_by;
  std::vector<std::string> message_ids;
};

class AdminClient {
 public:
  // `keys`: CURVE keys for a broker that wants them.
  explicit AdminClient(const std::string& endpoint, curve::ClientKeys keys = {}) {
    net::ConnectionOptions o;
    o.broker = endpoint;
    o.curve = std::move(keys);
    connection_ = std::move(net::Connection::Open(o).value());
  }

  Result<wire::Frame> Call(const std::function<void(wire::Envelope::Builder)>& fill) {
    auto request = connection_->NewRequest();
    fill(request.envelope());
    return connection_->CallSync(std::move(request), std::chrono::seconds(10));
  }

  // Messages a topic holds (end - min offset over its queues); -1 when the
  // topic is unknown or the call failed.
  int64_t TopicMessages(const std::string& topic) {
    auto list = Call([](wire::Envelope::Builder e) { e.setTopicList(); });
    if (!list.ok()) return -1;
    for (auto t : list->envelope().getTopicListOk().getTopics())
      if (wire::ToString(t.getName()) == topic) return static_cast<int64_t>(t.getMessages());
    return -1;
  }

  static TxInfo FromSummary(wire::TxSummary::Reader s) {
    TxInfo t;
    t.id = wire::ToString(s.getTransactionId());
    t.state = s.getState();
    t.stuck = s.getStuck();
    t.group = wire::ToString(s.getProducerGroup());
    t.instance = wire::ToString(s.getProducerInstance());
    t.check_count = s.getCheckCount();
    t.no_producer_checks = s.getNoProducerChecks();
    t.last_answer = s.getLastAnswer();
    t.last_error = wire::ToString(s.getLastError());
    t.resolved_by = wire::ToString(s.getResolvedBy());
    for (auto id : s.getMessageIds()) t.message_ids.push_back(wire::ToString(id));
    return t;
  }

  // Every open transaction (pages through the list).
  std::vector<TxInfo> ListTransactions(bool stuck_only = false, const std::string& group = "") {
    std::vector<TxInfo> out;
    std::string after;
    while (true) {
      auto r = Call([&](wire::Envelope::Builder e) {
        auto l = e.initListTransactions();
        l.setStuckOnly(stuck_only);
        l.setGroup(group);
        l.setAfter(after);
        l.setLimit(1000);
      });
      if (!r.ok()) return out;
      auto ok = r->envelope().getListTransactionsOk();
      for (auto s : ok.getTransactions()) out.push_back(FromSummary(s));
      if (!ok.getMore() || out.empty()) return out;
      after = out.back().id;
    }
  }

  Result<TxInfo> Show(const std::string& tx_id) {
    auto r = Call([&](wire::Envelope::Builder e) { e.setShowTransaction(tx_id); });
    if (!r.ok()) return r.status();
    return FromSummary(r->envelope().getShowTransactionOk().getSummary());
  }

  // EndTransaction as an operator (or as a producer when `op` is empty).
  Result<wire::TxState> End(const std::string& tx_id, bool commit, const std::string& op = "") {
    auto r = Call([&](wire::Envelope::Builder e) {
      auto end = e.initEndTransaction();
      end.setTransactionId(tx_id);
      end.setOutcome(commit ? wire::TxOutcome::COMMIT : wire::TxOutcome::ROLLBACK);
      end.setOperator(op);
    });
    if (!r.ok()) return r.status();
    return r->envelope().getEndTransactionOk().getState();
  }

  Result<uint32_t> CheckNow(const std::string& tx_id) {
    auto r = Call([&](wire::Envelope::Builder e) {
      auto c = e.initCheckNow();
      c.setTransactionId(tx_id);
      c.setOperator("test");
    });
    if (!r.ok()) return r.status();
    return r->envelope().getCheckNowOk().getScheduled();
  }

  // Open transactions according to the broker's counters.
  uint64_t OpenTransactions() {
    auto r = Call([](wire::Envelope::Builder e) { e.setStatus(); });
    return r.ok() ? r->envelope().getStatusOk().getTransactions().getOpen() : UINT64_MAX;
  }

 private:
  std::unique_ptr<net::Connection> connection_;
};

}  // namespace txmq::testing
