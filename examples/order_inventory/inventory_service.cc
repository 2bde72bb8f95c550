// The inventory service: consumes "order-created" through an idempotent
// inbox. With enough stock it reserves it and publishes "stock-reserved"
// (stock update, inbox record and outbox row in one local commit); without,
// it compensates: the order service gets a compensation and cancels the
// order.
//
//   txmq-example-inventory-service --broker tcp://127.0.0.1:7800
//       --db ./inventory-db --stock apple=5 --stock pear=0
//
// --stock sets an item's stock on the first start only (a restart on the
// same --db keeps what is left).
//
// Runs until SIGINT/SIGTERM. With --report it prints the stock of a
// stopped service's --db and exits.
#include <signal.h>

#include <CLI/CLI.hpp>
#include <iostream>

#include "examples/broker_flags.h"
#include "txmq/consumer.h"
#include "txmq/inbox.h"
#include "txmq/local_store.h"
#include "txmq/outbox.h"

int main(int argc, char** argv) {
  txmq::examples::BrokerFlags broker;
  std::string db = "./inventory-db";
  std::vector<std::string> stock;
  CLI::App app{"Inventory service of the txmq order/inventory example"};
  txmq::examples::AddBrokerFlags(app, broker);
  app.add_option("--db", db, "LevelDB directory for stock and txmq's tables")
      ->capture_default_str();
  app.add_option("--stock", stock,
                 "ITEM=QUANTITY to start with (repeatable; ignored for an item the store has)")
      ->allow_extra_args(false)
      ->check(
          [](const std::string& s) -> std::string {
            const auto eq = s.find('=');
            const std::string quantity = eq == std::string::npos ? "" : s.substr(eq + 1);
            if (eq == 0 || quantity.empty() || quantity.size() > 9 ||
                quantity.find_first_not_of("0123456789") != std::string::npos) {
              return "'" + s + "' is not ITEM=QUANTITY (a whole number of at most 9 digits)";
            }
            return "";
          },
          "ITEM=QUANTITY");
  bool report = false;
  app.add_flag("--report", report,
               "Print the stock in --db and exit (the service must be stopped)");
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
  if (report) {
    store.Scan("stock/", [](std::string_view key, std::string_view value) {
      std::cout << "stock " << key.substr(6) << " " << value << "\n";
      return true;
    });
    return 0;
  }
  for (const std::string& s : stock) {
    // Only the first start sets the stock: a restart keeps what is left.
    auto eq = s.find('=');
    txmq::LocalTxn tx = store.Begin();
    if (tx.Get("stock/" + s.substr(0, eq)).ok()) continue;
    txmq::Status st = tx.Put("stock/" + s.substr(0, eq), s.substr(eq + 1));
    if (st.ok()) st = tx.Commit();
    if (!st.ok()) {
      std::cerr << "inventory-service: " << st.ToString() << "\n";
      return 1;
    }
  }

  txmq::Outbox outbox(store, {.producer = {.broker = broker.url,
                                           .curve_key = broker.curve_key,
                                           .server_key = broker.server_key,
                                           .group = "inventory"}});
  if (!outbox.Start().ok()) return 1;
  txmq::Inbox inbox(store, {.group = "inventory", .outbox = &outbox});
  txmq::Consumer consumer({.broker = broker.url,
                           .curve_key = broker.curve_key,
                           .server_key = broker.server_key,
                           .group = "inventory"});
  txmq::Status subscribed = consumer.Subscribe(
      "order-created", inbox.Idempotent([&](txmq::LocalTxn& tx, const txmq::Received& m) {
        const std::string item = m.body.substr(0, m.body.find(':'));
        const int wanted = std::stoi(m.body.substr(m.body.find(':') + 1));
        // Handlers run on several threads at once. The commit checks that
        // the stock read here is still what the store holds; if another
        // order took some meanwhile, it is aborted and the inbox runs this
        // handler again with the new stock: never oversold.
        auto have = tx.Get("stock/" + item);
        const int in_stock = have.ok() ? std::stoi(*have) : 0;
        if (in_stock < wanted) {
          std::cout << "order " << m.key << ": " << item << " x" << wanted << " out of stock"
                    << std::endl;
          return txmq::ConsumeResult::Compensate(item + " out of stock");
        }
        txmq::Status written = tx.Put("stock/" + item, std::to_string(in_stock - wanted));
        if (written.ok()) {
          written = outbox.Add(tx, {.topic = "stock-reserved", .key = m.key, .body = item});
        }
        if (!written.ok()) {
          std::cerr << "order " << m.key << ": " << written.ToString() << "\n";
          return txmq::ConsumeResult::RetryLater();
        }
        std::cout << "order " << m.key << ": reserved " << item << " x" << wanted << std::endl;
        return txmq::ConsumeResult::Success();
      }));
  if (!subscribed.ok()) {
    std::cerr << "inventory-service: " << subscribed.ToString() << "\n";
    return 1;
  }
  if (!consumer.Start().ok()) return 1;
  std::cout << "inventory service ready" << std::endl;

  int sig;
  sigwait(&signals, &sig);
  consumer.Shutdown();
  outbox.Shutdown();
  return 0;
}
