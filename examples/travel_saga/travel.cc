// The travel saga example: a trip is a car, a hotel and a flight, booked
// one after the other by three services; when a step fails, what was
// booked is cancelled in reverse order. Every service is a process with its
// own LevelDB store; they talk only through txmq.
//
//   trip     the orchestrator. For each trip it sends book-car, then on
//            car-booked book-hotel, then on hotel-booked book-flight; on
//            flight-booked the trip is confirmed. A booking service that
//            cannot book answers with a compensation (ConsumeResult::
//            Compensate): the trip then sends cancel-hotel, on
//            hotel-cancelled cancel-car, and on car-cancelled the trip is
//            cancelled. Each step's state change and the message it sends
//            commit together (outbox), and each incoming message is applied
//            once (inbox).
//   booking  a car, hotel or flight service (--kind): book-<kind> books
//            (unless the city is sold out: a compensation), cancel-<kind>
//            undoes the booking through Inbox::Undo (a cancel that arrives
//            before its booking fences it: the booking is then never made).
//   report   what a stopped service's store holds.
//
//   txmq-example-travel booking --kind car --broker URL --db DIR [--sold-out CITY]...
//   txmq-example-travel trip --broker URL --db DIR --trip T-1:Paris --trip T-2:Lisbon
//   txmq-example-travel report --db DIR
#include <signal.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <chrono>
#include <iostream>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "examples/broker_flags.h"
#include "txmq/compensation.h"
#include "txmq/consumer.h"
#include "txmq/inbox.h"
#include "txmq/local_store.h"
#include "txmq/outbox.h"

namespace {

std::string ValueOr(const txmq::Result<std::string>& value, const std::string& otherwise) {
  return value.ok() ? value.value() : otherwise;
}

const std::vector<std::string> kSteps = {"car", "hotel", "flight"};

std::atomic<bool> stop{false};
void OnSignal(int) { stop = true; }

// One line more in what happened to a trip (the trip service's record).
txmq::Status Note(txmq::LocalTxn& tx, const std::string& trip, const std::string& line) {
  auto log = tx.Get("trip/" + trip + "/log");
  return tx.Put("trip/" + trip + "/log", (log.ok() ? *log + ", " : "") + line);
}

int Booking(const std::string& kind, const txmq::examples::BrokerFlags& broker,
            const std::string& db, const std::set<std::string>& sold_out) {
  auto opened = txmq::LocalStore::Open(db);
  if (!opened.ok()) {
    std::cerr << kind << ": " << opened.status().ToString() << "\n";
    return 1;
  }
  txmq::LocalStore& store = **opened;
  txmq::Outbox outbox(store, {.producer = {.broker = broker.url,
                                           .curve_key = broker.curve_key,
                                           .server_key = broker.server_key,
                                           .group = kind}});
  if (!outbox.Start().ok()) return 1;
  txmq::Inbox inbox(store, {.group = kind, .outbox = &outbox});
  txmq::Consumer consumer({.broker = broker.url,
                           .curve_key = broker.curve_key,
                           .server_key = broker.server_key,
                           .group = kind,
                           .long_poll = std::chrono::milliseconds(500)});
  // A booking and its cancel share a dedup key: the cancel undoes the booking.
  auto booking_of = [](const txmq::Received& m) { return "book/" + m.key; };
  txmq::Status s = consumer.Subscribe(
      "book-" + kind,
      inbox.Idempotent(
          [&](txmq::LocalTxn& tx, const txmq::Received& m) {
            const std::string city = m.body;
            if (sold_out.count(city) > 0) {
              std::cout << kind << ": " << m.key << " to " << city << ": sold out" << std::endl;
              return txmq::ConsumeResult::Compensate("no " + kind + " in " + city);
            }
            txmq::Status w = tx.Put(kind + "/" + m.key, "booked in " + city);
            if (w.ok()) {
              w = outbox.Add(tx, {.topic = kind + "-booked", .key = m.key});
            }
            if (!w.ok()) return txmq::ConsumeResult::RetryLater();
            std::cout << kind << ": " << m.key << " booked in " << city << std::endl;
            return txmq::ConsumeResult::Success();
          },
          booking_of));
  if (s.ok()) {
    s = consumer.Subscribe("cancel-" + kind,
                           inbox.Undo(
                               [&](txmq::LocalTxn& tx, const txmq::Received& m) {
                                 txmq::Status w = tx.Put(kind + "/" + m.key, "cancelled");
                                 if (w.ok()) {
                                   w = outbox.Add(tx, {.topic = kind + "-cancelled", .key = m.key});
                                 }
                                 if (!w.ok()) return txmq::ConsumeResult::RetryLater();
                                 std::cout << kind << ": " << m.key << " cancelled" << std::endl;
                                 return txmq::ConsumeResult::Success();
                               },
                               booking_of));
  }
  if (s.ok()) s = consumer.Start();
  if (!s.ok()) {
    std::cerr << kind << ": " << s.ToString() << "\n";
    return 1;
  }
  while (!stop) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  consumer.Shutdown();
  outbox.Shutdown();
  return 0;
}

int Trip(const txmq::examples::BrokerFlags& broker, const std::string& db,
         const std::vector<std::string>& trips, int wait_seconds) {
  auto opened = txmq::LocalStore::Open(db);
  if (!opened.ok()) {
    std::cerr << "trip: " << opened.status().ToString() << "\n";
    return 1;
  }
  txmq::LocalStore& store = **opened;
  txmq::Outbox outbox(store, {.producer = {.broker = broker.url,
                                           .curve_key = broker.curve_key,
                                           .server_key = broker.server_key,
                                           .group = "trip"}});
  if (!outbox.Start().ok()) return 1;
  txmq::Inbox inbox(store, {.group = "trip"});
  txmq::Consumer consumer({.broker = broker.url,
                           .curve_key = broker.curve_key,
                           .server_key = broker.server_key,
                           .group = "trip",
                           .long_poll = std::chrono::milliseconds(500)});

  // A step's answer moves the trip on: the next booking, or, when a step
  // failed, the cancel of the latest step still booked.
  auto send = [&](txmq::LocalTxn& tx, const std::string& what, const std::string& trip) {
    const std::string city = ValueOr(tx.Get("trip/" + trip + "/city"), "");
    return outbox.Add(tx, {.topic = what, .key = trip, .body = city});
  };
  auto on = [&](const std::string& topic,
                std::function<txmq::Status(txmq::LocalTxn&, const std::string&)> step) {
    return consumer.Subscribe(
        topic, inbox.Idempotent([&, topic, step](txmq::LocalTxn& tx, const txmq::Received& m) {
          txmq::Status w = Note(tx, m.key, topic);
          if (w.ok()) w = step(tx, m.key);
          return w.ok() ? txmq::ConsumeResult::Success() : txmq::ConsumeResult::RetryLater();
        }));
  };
  txmq::Status s = on("car-booked", [&](txmq::LocalTxn& tx, const std::string& trip) {
    return send(tx, "book-hotel", trip);
  });
  if (s.ok()) {
    s = on("hotel-booked", [&](txmq::LocalTxn& tx, const std::string& trip) {
      return send(tx, "book-flight", trip);
    });
  }
  if (s.ok()) {
    s = on("flight-booked", [&](txmq::LocalTxn& tx, const std::string& trip) {
      return tx.Put("trip/" + trip, "confirmed");
    });
  }
  if (s.ok()) {
    s = on("hotel-cancelled", [&](txmq::LocalTxn& tx, const std::string& trip) {
      return send(tx, "cancel-car", trip);
    });
  }
  if (s.ok()) {
    s = on("car-cancelled", [&](txmq::LocalTxn& tx, const std::string& trip) {
      const std::string why = ValueOr(tx.Get("trip/" + trip + "/failure"), "?");
      return tx.Put("trip/" + trip, "cancelled (" + why + ")");
    });
  }
  if (s.ok()) {
    // A booking service could not book: undo what was booked before it,
    // latest first.
    s = txmq::OnCompensation(
        consumer, inbox, "trip", [&](txmq::LocalTxn& tx, const txmq::Compensation& c) {
          const std::string trip = c.key;
          txmq::Status w = Note(tx, trip, c.consumer_group + " failed: " + c.reason);
          if (w.ok()) w = tx.Put("trip/" + trip + "/failure", c.reason);
          if (w.ok()) {
            if (c.consumer_group == "flight") {
              w = send(tx, "cancel-hotel", trip);
            } else if (c.consumer_group == "hotel") {
              w = send(tx, "cancel-car", trip);
            } else {
              w = tx.Put("trip/" + trip, "cancelled (" + c.reason + ")");
            }
          }
          return w.ok() ? txmq::ConsumeResult::Success() : txmq::ConsumeResult::RetryLater();
        });
  }
  if (s.ok()) s = consumer.Start();
  if (!s.ok()) {
    std::cerr << "trip: " << s.ToString() << "\n";
    return 1;
  }

  std::vector<std::string> ids;
  for (const std::string& spec : trips) {
    const std::string id = spec.substr(0, spec.find(':'));
    const std::string city = spec.substr(spec.find(':') + 1);
    ids.push_back(id);
    if (store.Get("trip/" + id).ok()) continue;  // placed by an earlier run
    txmq::LocalTxn tx = store.Begin();
    txmq::Status w = tx.Put("trip/" + id, "pending");
    if (w.ok()) w = tx.Put("trip/" + id + "/city", city);
    // (A LocalTxn reads the store, not its own writes: the city is given.)
    if (w.ok()) w = outbox.Add(tx, {.topic = "book-car", .key = id, .body = city});
    if (w.ok()) w = tx.Commit();
    if (!w.ok()) {
      std::cerr << "trip: " << w.ToString() << "\n";
      return 1;
    }
    std::cout << "trip " << id << " to " << city << " placed" << std::endl;
  }
  auto state = [&](const std::string& id) { return ValueOr(store.Get("trip/" + id), "?"); };
  auto all_final = [&] {
    for (const auto& id : ids) {
      if (state(id) == "pending") return false;
    }
    return true;
  };
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(wait_seconds);
  while (!all_final() && !stop && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  consumer.Shutdown();
  outbox.Shutdown();
  for (const auto& id : ids) {
    std::cout << id << ": " << state(id) << " [" << ValueOr(store.Get("trip/" + id + "/log"), "")
              << "]\n";
  }
  return all_final() ? 0 : 1;
}

int Report(const std::string& db) {
  auto opened = txmq::LocalStore::Open(db);
  if (!opened.ok()) {
    std::cerr << "report: " << opened.status().ToString() << "\n";
    return 1;
  }
  for (const std::string& kind : kSteps) {
    (*opened)->Scan(kind + "/", [&](std::string_view key, std::string_view value) {
      std::cout << key << " " << value << "\n";
      return true;
    });
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  txmq::examples::BrokerFlags broker;
  std::string db, kind;
  std::vector<std::string> sold_out, trips;
  int wait_seconds = 60;
  CLI::App app{"The txmq travel saga example (see the top of travel.cc)"};
  app.require_subcommand(1);
  auto* booking = app.add_subcommand("booking", "A car, hotel or flight booking service");
  auto* trip = app.add_subcommand("trip", "Books trips: car, hotel, flight; undoes on failure");
  auto* report = app.add_subcommand("report", "What a stopped booking service's store holds");
  for (CLI::App* cmd : {booking, trip, report}) {
    cmd->add_option("--db", db, "LevelDB directory of this service")->required();
  }
  for (CLI::App* cmd : {booking, trip}) {
    txmq::examples::AddBrokerFlags(*cmd, broker);
  }
  booking->add_option("--kind", kind, "car, hotel or flight")
      ->required()
      ->check(CLI::IsMember(kSteps));
  booking->add_option("--sold-out", sold_out, "A city this service cannot book (repeatable)");
  trip->add_option("--trip", trips, "ID:CITY (repeatable)")->required();
  trip->add_option("--wait", wait_seconds, "Give up waiting for outcomes after this many seconds");
  CLI11_PARSE(app, argc, argv);

  signal(SIGTERM, OnSignal);
  signal(SIGINT, OnSignal);
  if (*booking) return Booking(kind, broker, db, {sold_out.begin(), sold_out.end()});
  if (*trip) return Trip(broker, db, trips, wait_seconds);
  return Report(db);
}
