// The inventory service on PostgreSQL: consumes "order-created" through
// an idempotent inbox in its own database. With enough stock it reserves
// it and publishes "stock-reserved" (stock update, inbox record and outbox
// row in one transaction); without, it compensates: the order service gets
// a compensation and cancels the order.
//
//   txmq-example-pg-inventory-service --broker tcp://127.0.0.1:7800
//       --pg 'host=127.0.0.1 port=5432 dbname=inventory' --stock apple=5
//
// --stock sets an item's stock on the first start only (a restart keeps
// what is left). Runs until SIGINT/SIGTERM. With --report it prints the
// stock and exits.
#include <signal.h>

#include <CLI/CLI.hpp>
#include <iostream>

#include "examples/broker_flags.h"
#include "examples/order_inventory_pg/sql.h"
#include "txmq/consumer.h"
#include "txmq/pg/inbox.h"
#include "txmq/pg/outbox.h"

using example::Sql;

int main(int argc, char** argv) {
  txmq::examples::BrokerFlags broker;
  std::string conninfo = "dbname=inventory";
  std::vector<std::string> stock;
  bool report = false;
  CLI::App app{"Inventory service of the txmq order/inventory example, on PostgreSQL"};
  txmq::examples::AddBrokerFlags(app, broker);
  app.add_option("--pg", conninfo, "libpq connection string of the inventory database")
      ->capture_default_str();
  app.add_option("--stock", stock,
                 "ITEM=QUANTITY to start with (repeatable; ignored for an item the table has)")
      ->allow_extra_args(false);
  app.add_flag("--report", report, "Print the stock and exit");
  CLI11_PARSE(app, argc, argv);

  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  try {
    auto db = example::Connect(conninfo);
    Sql(db.get(),
        "CREATE TABLE IF NOT EXISTS stock (item text PRIMARY KEY, quantity int NOT NULL "
        "CHECK (quantity >= 0))");
    if (report) {
      auto rows = Sql(db.get(), "SELECT item, quantity FROM stock ORDER BY item");
      for (int i = 0; i < PQntuples(rows.get()); ++i) {
        std::cout << "stock " << PQgetvalue(rows.get(), i, 0) << " " << PQgetvalue(rows.get(), i, 1)
                  << "\n";
      }
      return 0;
    }
    for (const std::string& s : stock) {
      const auto eq = s.find('=');
      if (eq == std::string::npos || eq == 0) {
        std::cerr << "inventory-service: --stock '" << s << "' is not ITEM=QUANTITY\n";
        return 2;
      }
      // Only the first start sets the stock: a restart keeps what is left.
      Sql(db.get(), "INSERT INTO stock VALUES ($1, $2::int) ON CONFLICT (item) DO NOTHING",
          {s.substr(0, eq), s.substr(eq + 1)});
    }

    txmq::pg::Outbox outbox({.conninfo = conninfo,
                             .producer = {.broker = broker.url,
                                          .curve_key = broker.curve_key,
                                          .server_key = broker.server_key,
                                          .group = "inventory"}});
    if (txmq::Status s = outbox.Start(); !s.ok()) throw std::runtime_error(s.ToString());
    auto inbox =
        txmq::pg::Inbox::Open({.conninfo = conninfo, .group = "inventory", .outbox = &outbox});
    if (!inbox.ok()) throw std::runtime_error(inbox.status().ToString());
    txmq::Consumer consumer({.broker = broker.url,
                             .curve_key = broker.curve_key,
                             .server_key = broker.server_key,
                             .group = "inventory"});
    txmq::Status subscribed = consumer.Subscribe(
        "order-created", (*inbox)->Idempotent([&](PGconn* conn, const txmq::Received& m) {
          const std::string item = m.body.substr(0, m.body.find(':'));
          const std::string wanted = m.body.substr(m.body.find(':') + 1);
          // Handlers run on several threads at once: the row lock makes two
          // orders for one item take their turns, so it is never oversold.
          auto have = Sql(conn, "SELECT quantity FROM stock WHERE item = $1 FOR UPDATE", {item});
          const int in_stock =
              PQntuples(have.get()) == 1 ? std::stoi(PQgetvalue(have.get(), 0, 0)) : 0;
          if (in_stock < std::stoi(wanted)) {
            std::cout << "order " << m.key << ": " << item << " x" << wanted << " out of stock"
                      << std::endl;
            return txmq::ConsumeResult::Compensate(item + " out of stock");
          }
          Sql(conn, "UPDATE stock SET quantity = quantity - $2::int WHERE item = $1",
              {item, wanted});
          if (txmq::Status s =
                  outbox.Add(conn, {.topic = "stock-reserved", .key = m.key, .body = item});
              !s.ok()) {
            throw std::runtime_error(s.ToString());  // rolled back, delivered again
          }
          std::cout << "order " << m.key << ": reserved " << item << " x" << wanted << std::endl;
          return txmq::ConsumeResult::Success();
        }));
    if (!subscribed.ok()) throw std::runtime_error(subscribed.ToString());
    if (txmq::Status s = consumer.Start(); !s.ok()) throw std::runtime_error(s.ToString());
    std::cout << "inventory service ready" << std::endl;

    int sig;
    sigwait(&signals, &sig);
    consumer.Shutdown();
    outbox.Shutdown();
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "inventory-service: " << e.what() << "\n";
    return 1;
  }
}
