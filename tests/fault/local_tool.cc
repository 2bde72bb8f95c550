// txmq-test-localtool: a service with a local store in its own process, so
// fault tests can SIGKILL it between its steps.
//
//   txmq-test-localtool outbox-committed DB BROKER READY
//     commits a business row and an outbox row (id "crash-row-1") without
//     starting the relay, writes READY, and waits to be killed.
//   txmq-test-localtool outbox-uncommitted DB BROKER READY
//     adds an outbox row to a transaction that it never commits, writes
//     READY, and waits to be killed.
//   txmq-test-localtool outbox-acked DB BROKER READY
//     commits a business row and an outbox row (id "crash-row-2"), then
//     starts the relay with the store's log writes stalled: the broker
//     acknowledges the row, the relay's write that deletes it never
//     completes; writes READY there and waits to be killed.
//   txmq-test-localtool tx-before-local-commit DB BROKER GROUP READY
//     sends a half message from a store-backed transaction producer; inside
//     the local transaction writes the transaction id to READY and waits to
//     be killed (so the local commit never happens).
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "storage/src/local_store_impl.h"
#include "tests/fault/log_fault_env.h"
#include "txmq/local_store.h"
#include "txmq/outbox.h"
#include "txmq/properties.h"
#include "txmq/transaction_producer.h"

namespace {

[[noreturn]] void WaitToBeKilled() {
  while (true) std::this_thread::sleep_for(std::chrono::seconds(1));
}

void Ready(const std::string& path, const std::string& text) {
  std::ofstream(path + ".tmp") << text << "\n";
  std::rename((path + ".tmp").c_str(), path.c_str());
}

std::unique_ptr<txmq::LocalStore> Open(const std::string& db) {
  auto store = txmq::LocalStore::Open(db);
  if (!store.ok()) {
    std::cerr << store.status().ToString() << "\n";
    std::exit(1);
  }
  return std::move(store.value());
}

int Outbox(const std::string& db, const std::string& broker, const std::string& ready,
           bool commit) {
  auto store = Open(db);
  txmq::Outbox outbox(*store, {.producer = {.broker = broker, .group = "orders"}});
  txmq::LocalTxn tx = store->Begin();
  if (!tx.Put("order/1", "created").ok() ||
      !outbox.Add(tx, {.topic = "orders", .key = "1", .body = "order 1", .id = "crash-row-1"})
           .ok()) {
    return 1;
  }
  if (commit && !tx.Commit().ok()) return 1;
  Ready(ready, "ok");
  WaitToBeKilled();
}

int OutboxAcked(const std::string& db, const std::string& broker, const std::string& ready) {
  txmq::testing::LogFaultEnv env;
  auto store = txmq::LocalStore::Impl::Open(db, {}, &env);
  if (!store.ok()) {
    std::cerr << store.status().ToString() << "\n";
    return 1;
  }
  txmq::Outbox outbox(**store, {.producer = {.broker = broker, .group = "orders"}});
  txmq::LocalTxn tx = (*store)->Begin();
  if (!tx.Put("order/2", "created").ok() ||
      !outbox.Add(tx, {.topic = "orders", .key = "2", .body = "order 2", .id = "crash-row-2"})
           .ok() ||
      !tx.Commit().ok()) {
    return 1;
  }
  // From here the store writes nothing: the first write is the relay's
  // record of the broker's answer.
  env.StallAppends([&] { Ready(ready, "stalled"); });
  if (!outbox.Start().ok()) return 1;
  WaitToBeKilled();
}

int TxBeforeLocalCommit(const std::string& db, const std::string& broker, const std::string& group,
                        const std::string& ready) {
  auto store = Open(db);
  txmq::TransactionProducer p({.broker = broker, .group = group}, *store);
  if (!p.Start().ok()) return 1;
  std::string tx_id;
  // Killed inside the local step: the call never returns.
  (void)p.SendInTransaction({.topic = "orders", .body = "never committed"},
                            [&](txmq::LocalTxn& tx, const txmq::Message& m) {
                              if (!tx.Put("order/2", "created").ok()) std::abort();
                              Ready(ready, m.properties.at(txmq::property::kTransactionId));
                              WaitToBeKilled();
                              return txmq::TxState::kCommit;
                            });
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> a(argv + 1, argv + argc);
  if (a.size() == 4 && a[0] == "outbox-committed") return Outbox(a[1], a[2], a[3], true);
  if (a.size() == 4 && a[0] == "outbox-uncommitted") return Outbox(a[1], a[2], a[3], false);
  if (a.size() == 4 && a[0] == "outbox-acked") return OutboxAcked(a[1], a[2], a[3]);
  if (a.size() == 5 && a[0] == "tx-before-local-commit") {
    return TxBeforeLocalCommit(a[1], a[2], a[3], a[4]);
  }
  std::cerr << "usage: see the top of tests/fault/local_tool.cc\n";
  return 2;
}
