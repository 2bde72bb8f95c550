// txmq-test-sqliteservice: a service with a SQLite outbox in its own
// process, so tests can SIGKILL it at any instant.
//
//   txmq-test-sqliteservice place PATH BROKER COUNT PROGRESS
//     runs a relay (lease 1 s) and places COUNT orders, each a business
//     row and an outbox row ("order-<1000+i>", key "k<i % 5>") in one
//     BEGIN IMMEDIATE transaction; every 7th is rolled back instead. After
//     each transaction writes the number ended to PROGRESS; then waits to
//     be killed.
//   txmq-test-sqliteservice relay PATH BROKER INSTANCE LEASE_MS
//     runs a relay named INSTANCE until killed; SIGTERM shuts it down
//     (the outcomes of its sends in flight written, its claims given
//     back) and ends the process with 0.
//   txmq-test-sqliteservice consume PATH BROKER HOLD_ID READY
//     consumes "orders" as group "billing" through a sqlite::Inbox, each
//     message inserting its id into table "effects"; the handler of
//     message HOLD_ID writes "in-handler" to READY after its insert and
//     stops there, its transaction (and the write lock) held, until killed.
#include <pthread.h>
#include <sqlite3.h>

#include <chrono>
#include <csignal>
#include <iostream>
#include <string>

#include "tests/sql/service_tool.h"
#include "txmq/consumer.h"
#include "txmq/sqlite/inbox.h"
#include "txmq/sqlite/outbox.h"

namespace {

using namespace std::chrono_literals;

bool Ok(sqlite3* db, const std::string& sql) {
  if (sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr) == SQLITE_OK) return true;
  std::cerr << sql << ": " << sqlite3_errmsg(db) << "\n";
  return false;
}

txmq::sqlite::OutboxOptions Options(const std::string& path, const std::string& broker,
                                    const std::string& instance, std::chrono::milliseconds lease) {
  txmq::sqlite::OutboxOptions o;
  o.path = path;
  txmq::testing::SetTestRelayOptions(o, broker, instance, lease, 50ms);
  return o;
}

int Place(const std::string& path, const std::string& broker, int count,
          const std::string& progress) {
  txmq::sqlite::Outbox outbox(Options(path, broker, "placer", 1000ms));
  if (txmq::Status s = outbox.Start(); !s.ok()) {
    std::cerr << s.ToString() << "\n";
    return 1;
  }
  sqlite3* db = nullptr;
  if (sqlite3_open(path.c_str(), &db) != SQLITE_OK) return 1;
  sqlite3_busy_timeout(db, 10000);
  for (int i = 0; i < count; ++i) {
    const std::string id = "order-" + std::to_string(1000 + i);
    if (!Ok(db, "BEGIN IMMEDIATE") || !Ok(db, "INSERT INTO orders VALUES ('" + id + "', 1)")) {
      return 1;
    }
    txmq::Status s = outbox.Add(
        db, {.topic = "orders", .key = "k" + std::to_string(i % 5), .body = id, .id = id});
    if (!s.ok()) {
      std::cerr << s.ToString() << "\n";
      return 1;
    }
    if (!Ok(db, i % 7 == 3 ? "ROLLBACK" : "COMMIT")) return 1;
    txmq::testing::WriteAtomically(progress, std::to_string(i + 1));
  }
  txmq::testing::WaitToBeKilled();
}

int Relay(const std::string& path, const std::string& broker, const std::string& instance,
          int lease_ms) {
  // Blocked before any thread starts, so every thread inherits the mask and
  // only the sigwait below takes SIGTERM.
  sigset_t term;
  sigemptyset(&term);
  sigaddset(&term, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &term, nullptr);
  txmq::sqlite::Outbox outbox(Options(path, broker, instance, std::chrono::milliseconds(lease_ms)));
  if (txmq::Status s = outbox.Start(); !s.ok()) {
    std::cerr << s.ToString() << "\n";
    return 1;
  }
  int sig = 0;
  while (sigwait(&term, &sig) != 0 || sig != SIGTERM) {
  }
  outbox.Shutdown();
  return 0;
}

int Consume(const std::string& path, const std::string& broker, const std::string& hold_id,
            const std::string& ready) {
  auto inbox = txmq::sqlite::Inbox::Open({.path = path, .group = "billing"});
  if (!inbox.ok()) {
    std::cerr << inbox.status().ToString() << "\n";
    return 1;
  }
  txmq::Consumer consumer(txmq::testing::TestConsumerOptions(broker));
  txmq::Status s =
      consumer.Subscribe("orders", (*inbox)->Idempotent([&](sqlite3* db, const txmq::Received& m) {
        sqlite3_stmt* stmt = nullptr;
        bool ok = sqlite3_prepare_v2(db, "INSERT INTO effects VALUES (?1)", -1, &stmt, nullptr) ==
                  SQLITE_OK;
        ok = ok && sqlite3_bind_text(stmt, 1, m.id.c_str(), -1, SQLITE_TRANSIENT) == SQLITE_OK &&
             sqlite3_step(stmt) == SQLITE_DONE;
        sqlite3_finalize(stmt);
        if (!ok) return txmq::ConsumeResult::RetryLater();
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
  std::cerr << "usage: txmq-test-sqliteservice place PATH BROKER COUNT PROGRESS\n"
               "       txmq-test-sqliteservice relay PATH BROKER INSTANCE LEASE_MS\n"
               "       txmq-test-sqliteservice consume PATH BROKER HOLD_ID READY\n";
  return 2;
}
