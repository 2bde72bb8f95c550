// txmq-test-pgservice: a service with a PostgreSQL outbox in its own
// process, so tests can SIGKILL or SIGSTOP it at any instant.
//
//   txmq-test-pgservice place CONNINFO BROKER COUNT PROGRESS
//     runs a relay (lease 1 s) and places COUNT orders, each a business
//     row and an outbox row ("order-<i>", key "k<i % 5>") in one
//     transaction; after each commit writes the number placed to PROGRESS;
//     then waits to be killed.
//   txmq-test-pgservice relay CONNINFO BROKER INSTANCE LEASE_MS
//     runs a relay named INSTANCE until killed.
//   txmq-test-pgservice consume CONNINFO BROKER HOLD_ID READY
//     consumes "orders" as group "billing" through a pg::Inbox, each
//     message inserting its id into table "effects"; the handler of
//     message HOLD_ID writes "in-handler" to READY after its insert and
//     stops there, its transaction open, until killed.
#include <libpq-fe.h>

#include <chrono>
#include <iostream>
#include <string>

#include "tests/sql/service_tool.h"
#include "txmq/consumer.h"
#include "txmq/pg/inbox.h"
#include "txmq/pg/outbox.h"

namespace {

using namespace std::chrono_literals;

bool Ok(PGresult* r) {
  const bool ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
  PQclear(r);
  return ok;
}

txmq::pg::OutboxOptions Options(const std::string& conninfo, const std::string& broker,
                                const std::string& instance, std::chrono::milliseconds lease) {
  txmq::pg::OutboxOptions o;
  o.conninfo = conninfo;
  txmq::testing::SetTestRelayOptions(o, broker, instance, lease, 100ms);
  return o;
}

int Place(const std::string& conninfo, const std::string& broker, int count,
          const std::string& progress) {
  txmq::pg::Outbox outbox(Options(conninfo, broker, "placer", 1000ms));
  if (txmq::Status s = outbox.Start(); !s.ok()) {
    std::cerr << s.ToString() << "\n";
    return 1;
  }
  PGconn* conn = PQconnectdb(conninfo.c_str());
  for (int i = 0; i < count; ++i) {
    const std::string id = "order-" + std::to_string(1000 + i);
    if (!Ok(PQexec(conn, "BEGIN")) ||
        !Ok(PQexec(conn, ("INSERT INTO orders VALUES ('" + id + "', 1)").c_str()))) {
      std::cerr << PQerrorMessage(conn);
      return 1;
    }
    txmq::Status s = outbox.Add(
        conn, {.topic = "orders", .key = "k" + std::to_string(i % 5), .body = id, .id = id});
    if (!s.ok() || !Ok(PQexec(conn, "COMMIT"))) {
      std::cerr << s.ToString() << " " << PQerrorMessage(conn);
      return 1;
    }
    txmq::testing::WriteAtomically(progress, std::to_string(i + 1));
  }
  txmq::testing::WaitToBeKilled();
}

int Relay(const std::string& conninfo, const std::string& broker, const std::string& instance,
          int lease_ms) {
  txmq::pg::Outbox outbox(Options(conninfo, broker, instance, std::chrono::milliseconds(lease_ms)));
  if (txmq::Status s = outbox.Start(); !s.ok()) {
    std::cerr << s.ToString() << "\n";
    return 1;
  }
  txmq::testing::WaitToBeKilled();
}

int Consume(const std::string& conninfo, const std::string& broker, const std::string& hold_id,
            const std::string& ready) {
  auto inbox = txmq::pg::Inbox::Open({.conninfo = conninfo, .group = "billing"});
  if (!inbox.ok()) {
    std::cerr << inbox.status().ToString() << "\n";
    return 1;
  }
  txmq::Consumer consumer(txmq::testing::TestConsumerOptions(broker));
  txmq::Status s =
      consumer.Subscribe("orders", (*inbox)->Idempotent([&](PGconn* conn, const txmq::Received& m) {
        const char* values[] = {m.id.c_str()};
        PGresult* r = PQexecParams(conn, "INSERT INTO effects VALUES ($1)", 1, nullptr, values,
                                   nullptr, nullptr, 0);
        if (!Ok(r)) return txmq::ConsumeResult::RetryLater();
        if (m.id == hold_id) {
          txmq::testing::WriteAtomically(ready, "in-handler");
          txmq::testing::WaitToBeKilled();
        }
        return txmq::ConsumeResult::Success();
      }));
  if (s.ok()) s = consumer.Start();
  if (!s.ok()) {
    std::cerr << s.ToString() << "\n";
    return 1;
  }
  txmq::testing::WaitToBeKilled();
}

}  // namespace

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "";
  if (mode == "place" && argc == 6) return Place(argv[2], argv[3], std::stoi(argv[4]), argv[5]);
  if (mode == "relay" && argc == 6) return Relay(argv[2], argv[3], argv[4], std::stoi(argv[5]));
  if (mode == "consume" && argc == 6) return Consume(argv[2], argv[3], argv[4], argv[5]);
  std::cerr << "usage: txmq-test-pgservice place CONNINFO BROKER COUNT PROGRESS\n"
               "       txmq-test-pgservice relay CONNINFO BROKER INSTANCE LEASE_MS\n"
               "       txmq-test-pgservice consume CONNINFO BROKER HOLD_ID READY\n";
  return 2;
}
