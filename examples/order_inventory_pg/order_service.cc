// The order service on PostgreSQL: the order row and its "order-created"
// message commit in one transaction of the service's own database (the
// outbox row lives in a txmq_ table beside the orders); a relay sends it.
// Outcomes come back through an idempotent inbox in the same database:
// "stock-reserved" confirms an order, a compensation from the inventory
// service cancels it.
//
//   txmq-example-pg-order-service --broker tcp://127.0.0.1:7800
//       --pg 'host=127.0.0.1 port=5432 dbname=orders' --order o-1:apple:2
//
// Prints each order's final status and exits when all are final (or after
// --wait seconds). Started again with the same database and --order
// flags, it places only the orders it had not placed, then waits.
#include <CLI/CLI.hpp>
#include <chrono>
#include <iostream>
#include <sstream>
#include <thread>

#include "examples/broker_flags.h"
#include "examples/order_inventory_pg/sql.h"
#include "txmq/compensation.h"
#include "txmq/consumer.h"
#include "txmq/pg/inbox.h"
#include "txmq/pg/outbox.h"

using example::Sql;

int main(int argc, char** argv) {
  txmq::examples::BrokerFlags broker;
  std::string conninfo = "dbname=orders";
  std::vector<std::string> orders;
  int wait_seconds = 30;
  CLI::App app{"Order service of the txmq order/inventory example, on PostgreSQL"};
  txmq::examples::AddBrokerFlags(app, broker);
  app.add_option("--pg", conninfo, "libpq connection string of the orders database")
      ->capture_default_str();
  app.add_option("--order", orders, "ID:ITEM:QUANTITY (repeatable)")->allow_extra_args(false);
  app.add_option("--wait", wait_seconds, "Give up waiting for outcomes after this many seconds");
  CLI11_PARSE(app, argc, argv);

  try {
    auto db = example::Connect(conninfo);
    Sql(db.get(),
        "CREATE TABLE IF NOT EXISTS orders (id text PRIMARY KEY, item text NOT NULL, "
        "quantity int NOT NULL, status text NOT NULL)");

    // Publishing: the relay sends committed outbox rows until the broker has them.
    txmq::pg::Outbox outbox({.conninfo = conninfo,
                             .producer = {.broker = broker.url,
                                          .curve_key = broker.curve_key,
                                          .server_key = broker.server_key,
                                          .group = "orders"}});
    if (txmq::Status s = outbox.Start(); !s.ok()) throw std::runtime_error(s.ToString());

    // Outcomes, each applied once: the inbox's record commits with the update.
    auto inbox = txmq::pg::Inbox::Open({.conninfo = conninfo, .group = "orders"});
    if (!inbox.ok()) throw std::runtime_error(inbox.status().ToString());
    txmq::Consumer consumer({.broker = broker.url,
                             .curve_key = broker.curve_key,
                             .server_key = broker.server_key,
                             .group = "orders"});
    txmq::Status subscribed = consumer.Subscribe(
        "stock-reserved", (*inbox)->Idempotent([](PGconn* conn, const txmq::Received& m) {
          Sql(conn, "UPDATE orders SET status = 'confirmed' WHERE id = $1", {m.key});
          return txmq::ConsumeResult::Success();
        }));
    // The undo. Only a pending order is cancelled: a compensation for an
    // order this database never committed (or already decided) changes
    // nothing.
    if (subscribed.ok()) {
      subscribed = consumer.Subscribe(
          txmq::CompensationTopic("orders"),
          (*inbox)->Idempotent([](PGconn* conn, const txmq::Received& m) {
            auto c = txmq::CompensationFromMessage(m);
            if (!c.ok())
              return txmq::ConsumeResult::Success();  // not a compensation: nothing to undo
            Sql(conn,
                "UPDATE orders SET status = 'cancelled (' || $2 || ')' "
                "WHERE id = $1 AND status = 'pending'",
                {c->key, c->reason});
            return txmq::ConsumeResult::Success();
          }));
    }
    if (!subscribed.ok()) throw std::runtime_error(subscribed.ToString());
    if (txmq::Status s = consumer.Start(); !s.ok()) throw std::runtime_error(s.ToString());

    std::vector<std::string> ids;
    for (const std::string& spec : orders) {
      std::string id, item, quantity;
      std::stringstream in(spec);
      std::getline(in, id, ':');
      std::getline(in, item, ':');
      std::getline(in, quantity, ':');
      ids.push_back(id);
      Sql(db.get(), "BEGIN");
      // Started again after a crash: what was placed stays placed (its
      // message is in the outbox or already sent), and is not placed twice.
      auto placed = Sql(db.get(),
                        "INSERT INTO orders VALUES ($1, $2, $3, 'pending') "
                        "ON CONFLICT (id) DO NOTHING RETURNING id",
                        {id, item, quantity});
      if (PQntuples(placed.get()) == 0) {
        Sql(db.get(), "ROLLBACK");
        std::cout << id << " was placed before\n";
        continue;
      }
      if (txmq::Status s = outbox.Add(
              db.get(), {.topic = "order-created", .key = id, .body = item + ":" + quantity});
          !s.ok()) {
        throw std::runtime_error(s.ToString());
      }
      Sql(db.get(), "COMMIT");
      std::cout << "placed " << id << " (" << item << " x" << quantity << ")\n";
    }

    auto status = [&](const std::string& id) {
      auto r = Sql(db.get(), "SELECT status FROM orders WHERE id = $1", {id});
      return std::string(PQntuples(r.get()) == 1 ? PQgetvalue(r.get(), 0, 0) : "missing");
    };
    auto all_final = [&] {
      for (const auto& id : ids) {
        if (status(id) == "pending") return false;
      }
      return true;
    };
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(wait_seconds);
    while (!all_final() && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    for (const auto& id : ids) std::cout << id << ": " << status(id) << "\n";
    consumer.Shutdown();
    outbox.Shutdown();
    return all_final() ? 0 : 1;
  } catch (const std::exception& e) {
    std::cerr << "order-service: " << e.what() << "\n";
    return 1;
  }
}
