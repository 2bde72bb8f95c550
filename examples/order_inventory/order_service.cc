// The order service: places orders and publishes "order-created" through
// its outbox (the order row and the message commit together), then
// listens for the outcome: "stock-reserved" confirms an order, a
// compensation from the inventory service cancels it.
//
//   txmq-example-order-service --broker tcp://127.0.0.1:7800 --db ./orders-db
//       --order o-1:apple:2 --order o-2:pear:1
//
// Prints each order's final status and exits when all are final (or
// after --wait seconds). Started again with the same --db and --order
// flags, it places only the orders it had not placed, then waits.
#include <CLI/CLI.hpp>
#include <chrono>
#include <iostream>
#include <map>
#include <sstream>
#include <thread>

#include "examples/broker_flags.h"
#include "txmq/compensation.h"
#include "txmq/consumer.h"
#include "txmq/inbox.h"
#include "txmq/local_store.h"
#include "txmq/outbox.h"

int main(int argc, char** argv) {
  txmq::examples::BrokerFlags broker;
  std::string db = "./orders-db";
  std::vector<std::string> orders;
  int wait_seconds = 30;
  CLI::App app{"Order service of the txmq order/inventory example"};
  txmq::examples::AddBrokerFlags(app, broker);
  app.add_option("--db", db, "LevelDB directory for orders and txmq's tables")
      ->capture_default_str();
  app.add_option("--order", orders, "ID:ITEM:QUANTITY (repeatable)")->allow_extra_args(false);
  app.add_option("--wait", wait_seconds, "Give up waiting for outcomes after this many seconds");
  CLI11_PARSE(app, argc, argv);

  auto opened = txmq::LocalStore::Open(db);
  if (!opened.ok()) {
    std::cerr << "order-service: " << opened.status().ToString() << "\n";
    return 1;
  }
  txmq::LocalStore& store = **opened;

  // Publishing: the outbox relays committed rows until the broker has them.
  txmq::Outbox outbox(store, {.producer = {.broker = broker.url,
                                           .curve_key = broker.curve_key,
                                           .server_key = broker.server_key,
                                           .group = "orders"}});
  if (!outbox.Start().ok()) return 1;

  // Outcomes: confirmations and compensations, each applied once.
  txmq::Inbox inbox(store, {.group = "orders"});
  txmq::Consumer consumer({.broker = broker.url,
                           .curve_key = broker.curve_key,
                           .server_key = broker.server_key,
                           .group = "orders"});
  txmq::Status subscribed = consumer.Subscribe(
      "stock-reserved", inbox.Idempotent([](txmq::LocalTxn& tx, const txmq::Received& m) {
        if (!tx.Put("order/" + m.key, "confirmed").ok()) {
          return txmq::ConsumeResult::RetryLater();
        }
        return txmq::ConsumeResult::Success();
      }));
  if (subscribed.ok()) {
    subscribed = txmq::OnCompensation(
        consumer, inbox, "orders", [](txmq::LocalTxn& tx, const txmq::Compensation& c) {
          // The undo: the order is cancelled, with the reason.
          if (!tx.Put("order/" + c.key, "cancelled (" + c.reason + ")").ok()) {
            return txmq::ConsumeResult::RetryLater();
          }
          return txmq::ConsumeResult::Success();
        });
  }
  if (!subscribed.ok()) {
    std::cerr << "order-service: " << subscribed.ToString() << "\n";
    return 1;
  }
  if (!consumer.Start().ok()) return 1;

  std::vector<std::string> ids;
  for (const std::string& spec : orders) {
    std::string id, item, quantity;
    std::stringstream in(spec);
    std::getline(in, id, ':');
    std::getline(in, item, ':');
    std::getline(in, quantity, ':');
    ids.push_back(id);
    // Started again after a crash: what was placed stays placed (its
    // message is in the outbox or already sent), and is not placed twice.
    if (auto placed = store.Get("order/" + id); placed.ok()) {
      std::cout << id << " was placed before (" << placed.value() << ")\n";
      continue;
    }
    txmq::LocalTxn tx = store.Begin();
    txmq::Status s = tx.Put("order/" + id, "pending");
    if (s.ok())
      s = outbox.Add(tx, {.topic = "order-created", .key = id, .body = item + ":" + quantity});
    if (s.ok()) s = tx.Commit();
    if (!s.ok()) {
      std::cerr << "order-service: " << s.ToString() << "\n";
      return 1;
    }
    std::cout << "placed " << id << " (" << item << " x" << quantity << ")\n";
  }

  auto status = [&](const std::string& id) { return store.Get("order/" + id).value(); };
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(wait_seconds);
  auto all_final = [&] {
    for (const auto& id : ids) {
      if (status(id) == "pending") return false;
    }
    return true;
  };
  while (!all_final() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  for (const auto& id : ids) std::cout << id << ": " << status(id) << "\n";
  consumer.Shutdown();
  outbox.Shutdown();
  return all_final() ? 0 : 1;
}
