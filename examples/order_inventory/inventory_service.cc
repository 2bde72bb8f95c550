// The inventory service: consumes "order-created" through an idempotent
// inbox. With enough stock it reserves it and publishes "stock-reserved"
// (stock update, inbox record and outbox row in one local commit); without,
// it compensates: the order service gets a compensation and cancels the
// order.
//
//   txmq-example-inventory-service --broker tcp://127.0.0.1:7800
//       --db ./inventory-db --stock apple=5 --stock pear=0
//
// Runs until SIGINT/SIGTERM.
#include <signal.h>

#include <CLI/CLI.hpp>
#include <iostream>

#include "txmq/consumer.h"
#include "txmq/inbox.h"
#include "txmq/local_store.h"
#include "txmq/outbox.h"

int main(int argc, char** argv) {
  std::string broker = "tcp://127.0.0.1:7800", db = "./inventory-db";
  std::vector<std::string> stock;
  CLI::App app{"Inventory service of the txmq order/inventory example"};
  app.add_option("--broker", broker, "txmqd endpoint")->capture_default_str();
  app.add_option("--db", db, "LevelDB directory for stock and txmq's tables")
      ->capture_default_str();
  app.add_option("--stock", stock, "ITEM=QUANTITY to start with (repeatable)")
      ->allow_extra_args(false);
  CLI11_PARSE(app, argc, argv);

  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  auto opened = txmq::LocalStore::Open(db);
  if (!opened.ok()) {
    std::cerr << "inventory-service: " << opened.status().ToString() << "\n";
    return 1;
  }
  txmq::LocalStore& store = **opened;
  for (const std::string& s : stock) {
    auto eq = s.find('=');
    txmq::LocalTxn tx = store.Begin();
    tx.Put("stock/" + s.substr(0, eq), s.substr(eq + 1));
    tx.Commit();
  }

  txmq::Outbox outbox(store, {.producer = {.broker = broker, .group = "inventory"}});
  if (!outbox.Start().ok()) return 1;
  txmq::Inbox inbox(store, {.group = "inventory", .outbox = &outbox});
  txmq::Consumer consumer({.broker = broker, .group = "inventory"});
  consumer.Subscribe(
      "order-created", inbox.Idempotent([&](txmq::LocalTxn& tx, const txmq::Received& m) {
        const std::string item = m.body.substr(0, m.body.find(':'));
        const int wanted = std::stoi(m.body.substr(m.body.find(':') + 1));
        auto have = tx.Get("stock/" + item);
        const int in_stock = have.ok() ? std::stoi(*have) : 0;
        if (in_stock < wanted) {
          std::cout << "order " << m.key << ": " << item << " x" << wanted << " out of stock\n";
          return txmq::ConsumeResult::Compensate(item + " out of stock");
        }
        tx.Put("stock/" + item, std::to_string(in_stock - wanted));
        outbox.Add(tx, {.topic = "stock-reserved", .key = m.key, .body = item});
        std::cout << "order " << m.key << ": reserved " << item << " x" << wanted << "\n";
        return txmq::ConsumeResult::Success();
      }));
  if (!consumer.Start().ok()) return 1;
  std::cout << "inventory service ready" << std::endl;

  int sig;
  sigwait(&signals, &sig);
  consumer.Shutdown();
  outbox.Shutdown();
  return 0;
}
