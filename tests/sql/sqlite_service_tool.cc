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
//     runs a relay named INSTANCE until killed.
#include <sqlite3.h>

#include <chrono>
#include <iostream>
#include <string>

#include "tests/sql/service_tool.h"
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
  txmq::sqlite::Outbox outbox(Options(path, broker, instance, std::chrono::milliseconds(lease_ms)));
  if (txmq::Status s = outbox.Start(); !s.ok()) {
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
  std::cerr << "usage: txmq-test-sqliteservice place PATH BROKER COUNT PROGRESS\n"
               "       txmq-test-sqliteservice relay PATH BROKER INSTANCE LEASE_MS\n";
  return 2;
}
