// The TCC transfer example: Bob pays Smith as Try / Confirm / Cancel, by
// messages. Three processes, each with its own LevelDB store:
//
//   coordinator  for each transfer sends try-a and try-b. When both banks
//                answered "tried" it sends confirm-a and confirm-b; when a
//                bank cannot try (a compensation) or a bank has not
//                answered within --try-timeout, it sends cancel-a and
//                cancel-b. Every state change and the messages it causes
//                commit together (outbox); every answer is applied once
//                (inbox).
//   bank a       Bob's bank. Try freezes the amount (balance -> frozen),
//                or answers with a compensation when Bob has too little;
//                confirm lets the frozen amount go; cancel gives it back.
//   bank b       Smith's bank. Try records the incoming amount as pending;
//                confirm credits it; cancel drops it.
//
// The two fences TCC needs come from Inbox::Undo (cancel undoes try):
//   null cancel  a cancel whose try never ran undoes nothing;
//   hanging try  a try that arrives after its cancel is not run, so it
//                cannot freeze money that nothing will ever confirm or
//                cancel.
// --slow-try ID makes the coordinator send that transfer's try-b with a
// delay longer than --try-timeout (a network that holds a message back):
// the coordinator cancels, bank b sees the cancel first, and the try that
// comes later is skipped.
//
//   txmq-example-tcc bank --bank a|b --broker URL --db DIR
//   txmq-example-tcc coordinator --broker URL --db DIR --transfer t-1:50 ... [--slow-try t-3]
//   txmq-example-tcc report --bank a|b --db DIR [--id t-1]...
#include <signal.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <chrono>
#include <iostream>
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

using Clock = std::chrono::system_clock;
constexpr int64_t kBobOpens = 1000;

std::atomic<bool> stop{false};
void OnSignal(int) { stop = true; }

int64_t Number(const txmq::Result<std::string>& value) {
  return value.ok() ? std::stoll(value.value()) : 0;
}
std::string Text(const txmq::Result<std::string>& value) { return value.ok() ? value.value() : ""; }
int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now().time_since_epoch())
      .count();
}

// Adds `delta` to the number stored at `key`.
txmq::Status Add(txmq::LocalTxn& tx, const std::string& key, int64_t delta) {
  return tx.Put(key, std::to_string(Number(tx.Get(key)) + delta));
}

txmq::ConsumeResult Done(const txmq::Status& s) {
  return s.ok() ? txmq::ConsumeResult::Success() : txmq::ConsumeResult::RetryLater();
}

int Bank(const std::string& bank, const txmq::examples::BrokerFlags& broker,
         const std::string& db) {
  auto opened = txmq::LocalStore::Open(db);
  if (!opened.ok()) {
    std::cerr << "bank " << bank << ": " << opened.status().ToString() << "\n";
    return 1;
  }
  txmq::LocalStore& store = **opened;
  const std::string account = bank == "a" ? "bob" : "smith";
  if (!store.Get("balance/" + account).ok()) {
    txmq::LocalTxn tx = store.Begin();
    if (!tx.Put("balance/" + account, std::to_string(bank == "a" ? kBobOpens : 0)).ok() ||
        !tx.Commit().ok()) {
      return 1;
    }
  }
  const std::string group = "bank-" + bank;
  txmq::Outbox outbox(store, {.producer = {.broker = broker.url,
                                           .curve_key = broker.curve_key,
                                           .server_key = broker.server_key,
                                           .group = group}});
  if (!outbox.Start().ok()) return 1;
  txmq::Inbox inbox(store, {.group = group, .outbox = &outbox});
  txmq::Consumer consumer({.broker = broker.url,
                           .curve_key = broker.curve_key,
                           .server_key = broker.server_key,
                           .group = group,
                           .long_poll = std::chrono::milliseconds(300)});
  // Try and cancel share a dedup key: the cancel undoes the try.
  auto try_of = [](const txmq::Received& m) { return "try/" + m.key; };

  txmq::Status s = consumer.Subscribe(
      "try-" + bank, inbox.Idempotent(
                         [&](txmq::LocalTxn& tx, const txmq::Received& m) {
                           const int64_t amount = std::stoll(m.body);
                           if (bank == "a") {
                             const int64_t balance = Number(tx.Get("balance/bob"));
                             if (balance < amount) {
                               return txmq::ConsumeResult::Compensate(
                                   "Bob has " + std::to_string(balance) + ", not " + m.body);
                             }
                             txmq::Status w =
                                 tx.Put("balance/bob", std::to_string(balance - amount));
                             if (w.ok()) w = tx.Put("frozen/" + m.key, m.body);
                             if (w.ok())
                               w = outbox.Add(tx, {.topic = "tried", .key = m.key, .body = bank});
                             return Done(w);
                           }
                           txmq::Status w = tx.Put("pending/" + m.key, m.body);
                           if (w.ok())
                             w = outbox.Add(tx, {.topic = "tried", .key = m.key, .body = bank});
                           return Done(w);
                         },
                         try_of));
  if (s.ok()) {
    s = consumer.Subscribe(
        "confirm-" + bank, inbox.Idempotent([&](txmq::LocalTxn& tx, const txmq::Received& m) {
          // Only what its try set aside: a confirm is sent only after both tried.
          const std::string held = bank == "a" ? "frozen/" + m.key : "pending/" + m.key;
          const int64_t amount = Number(tx.Get(held));
          txmq::Status w = tx.Delete(held);
          if (w.ok() && bank == "b") w = Add(tx, "balance/smith", amount);
          if (w.ok()) w = tx.Put("confirmed/" + m.key, std::to_string(amount));
          return Done(w);
        }));
  }
  if (s.ok()) {
    s = consumer.Subscribe("cancel-" + bank,
                           inbox.Undo(
                               [&](txmq::LocalTxn& tx, const txmq::Received& m) {
                                 // What the try set aside, if it set anything
                                 // aside (a try that compensated did not).
                                 const std::string held =
                                     bank == "a" ? "frozen/" + m.key : "pending/" + m.key;
                                 const int64_t amount = Number(tx.Get(held));
                                 txmq::Status w = tx.Delete(held);
                                 if (w.ok() && bank == "a" && amount > 0) {
                                   w = Add(tx, "balance/bob", amount);
                                 }
                                 if (w.ok())
                                   w = tx.Put("cancelled/" + m.key, std::to_string(amount));
                                 return Done(w);
                               },
                               try_of));
  }
  if (s.ok()) s = consumer.Start();
  if (!s.ok()) {
    std::cerr << "bank " << bank << ": " << s.ToString() << "\n";
    return 1;
  }
  while (!stop) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  consumer.Shutdown();
  outbox.Shutdown();
  return 0;
}

struct Transfer {
  std::string id;
  int64_t amount = 0;
};

int Coordinator(const txmq::examples::BrokerFlags& broker, const std::string& db,
                const std::vector<Transfer>& transfers, const std::string& slow_try,
                std::chrono::milliseconds try_timeout, int wait_seconds) {
  auto opened = txmq::LocalStore::Open(db);
  if (!opened.ok()) {
    std::cerr << "coordinator: " << opened.status().ToString() << "\n";
    return 1;
  }
  txmq::LocalStore& store = **opened;
  txmq::Outbox outbox(store, {.producer = {.broker = broker.url,
                                           .curve_key = broker.curve_key,
                                           .server_key = broker.server_key,
                                           .group = "tcc"}});
  if (!outbox.Start().ok()) return 1;
  txmq::Inbox inbox(store, {.group = "tcc"});
  txmq::Consumer consumer({.broker = broker.url,
                           .curve_key = broker.curve_key,
                           .server_key = broker.server_key,
                           .group = "tcc",
                           .long_poll = std::chrono::milliseconds(300)});

  // Phase two: both confirm, or both cancel. Only from "trying": a late
  // answer to a transfer already decided changes nothing.
  auto decide = [&](txmq::LocalTxn& tx, const std::string& id, const std::string& outcome,
                    const std::string& why) {
    if (Text(tx.Get("state/" + id)) != "trying") return txmq::Status::OK();
    const std::string amount = Text(tx.Get("amount/" + id));
    const std::string verb = outcome == "confirmed" ? "confirm" : "cancel";
    txmq::Status w = tx.Put("state/" + id, why.empty() ? outcome : outcome + " (" + why + ")");
    if (w.ok()) w = outbox.Add(tx, {.topic = verb + "-a", .key = id, .body = amount});
    if (w.ok()) w = outbox.Add(tx, {.topic = verb + "-b", .key = id, .body = amount});
    return w;
  };
  txmq::Status s = consumer.Subscribe(
      "tried", inbox.Idempotent([&](txmq::LocalTxn& tx, const txmq::Received& m) {
        // Both answers update one key (it exists from phase one, so the
        // store sees two answers committing at once conflict, and one of
        // them runs again): the second answer finds the first.
        const std::string banks = Text(tx.Get("tried/" + m.key)) + m.body;
        txmq::Status w = tx.Put("tried/" + m.key, banks);
        if (w.ok() && banks.size() == 2) w = decide(tx, m.key, "confirmed", "");
        return Done(w);
      }));
  if (s.ok()) {
    s = txmq::OnCompensation(consumer, inbox, "tcc",
                             [&](txmq::LocalTxn& tx, const txmq::Compensation& c) {
                               return Done(decide(tx, c.key, "cancelled", c.reason));
                             });
  }
  if (s.ok()) s = consumer.Start();
  if (!s.ok()) {
    std::cerr << "coordinator: " << s.ToString() << "\n";
    return 1;
  }

  // Phase one: try at both banks.
  for (const Transfer& t : transfers) {
    if (store.Get("state/" + t.id).ok()) continue;  // begun by an earlier run
    txmq::LocalTxn tx = store.Begin();
    const std::string amount = std::to_string(t.amount);
    txmq::Status w = tx.Put("state/" + t.id, "trying");
    if (w.ok()) w = tx.Put("amount/" + t.id, amount);
    if (w.ok()) w = tx.Put("began/" + t.id, std::to_string(NowMs()));
    if (w.ok()) w = tx.Put("tried/" + t.id, "");
    if (w.ok()) w = outbox.Add(tx, {.topic = "try-a", .key = t.id, .body = amount});
    if (w.ok()) {
      txmq::Message try_b{.topic = "try-b", .key = t.id, .body = amount};
      if (t.id == slow_try) try_b.delay = try_timeout * 3;  // held back past the timeout
      w = outbox.Add(tx, std::move(try_b));
    }
    if (w.ok()) w = tx.Commit();
    if (!w.ok()) {
      std::cerr << "coordinator: " << w.ToString() << "\n";
      return 1;
    }
  }

  // A transfer still trying after --try-timeout is cancelled: a bank that
  // does not answer must not hold the money of the other forever.
  auto state = [&](const std::string& id) { return Text(store.Get("state/" + id)); };
  const auto deadline = Clock::now() + std::chrono::seconds(wait_seconds);
  bool all_final = false;
  while (!all_final && !stop && Clock::now() < deadline) {
    all_final = true;
    for (const Transfer& t : transfers) {
      if (state(t.id) != "trying") continue;
      all_final = false;
      if (NowMs() - Number(store.Get("began/" + t.id)) < try_timeout.count()) continue;
      txmq::LocalTxn tx = store.Begin();
      if (decide(tx, t.id, "cancelled", "a bank did not answer in time").ok()) {
        (void)tx.Commit();  // ABORTED when an answer decided it meanwhile: looked at again
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  // The phase-two messages leave before the coordinator does.
  (void)outbox.Flush(std::chrono::seconds(10));
  consumer.Shutdown();
  outbox.Shutdown();
  for (const Transfer& t : transfers) std::cout << t.id << ": " << state(t.id) << "\n";
  return all_final ? 0 : 1;
}

int Report(const std::string& bank, const std::string& db, const std::vector<std::string>& ids) {
  auto opened = txmq::LocalStore::Open(db);
  if (!opened.ok()) {
    std::cerr << "report: " << opened.status().ToString() << "\n";
    return 1;
  }
  txmq::LocalStore& store = **opened;
  const std::string account = bank == "a" ? "bob" : "smith";
  std::cout << "balance " << account << " " << Text(store.Get("balance/" + account)) << "\n";
  for (const char* kind : {"frozen/", "pending/", "confirmed/", "cancelled/"}) {
    store.Scan(kind, [&](std::string_view key, std::string_view value) {
      std::cout << key << " " << value << "\n";
      return true;
    });
  }
  // What the inbox decided about each try: the fences show here.
  txmq::Inbox inbox(store, {.group = "bank-" + bank});
  for (const std::string& id : ids) {
    if (auto r = inbox.Lookup("try/" + id)) {
      std::cout << "try " << id << " " << txmq::InboxStateName(r->state) << "\n";
    }
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  txmq::examples::BrokerFlags broker;
  std::string db, bank, slow_try;
  std::vector<std::string> specs, ids;
  int timeout_ms = 1000, wait_seconds = 60;
  CLI::App app{"The txmq TCC transfer example (see the top of tcc.cc)"};
  app.require_subcommand(1);
  auto* bank_cmd = app.add_subcommand("bank", "Bob's (a) or Smith's (b) bank");
  auto* coordinator = app.add_subcommand("coordinator", "Runs transfers as Try/Confirm/Cancel");
  auto* report = app.add_subcommand("report", "What a stopped bank's store holds");
  for (CLI::App* cmd : {bank_cmd, coordinator, report}) {
    cmd->add_option("--db", db, "LevelDB directory of this service")->required();
  }
  for (CLI::App* cmd : {bank_cmd, coordinator}) {
    txmq::examples::AddBrokerFlags(*cmd, broker);
  }
  for (CLI::App* cmd : {bank_cmd, report}) {
    cmd->add_option("--bank", bank, "a (Bob's) or b (Smith's)")
        ->required()
        ->check(CLI::IsMember({"a", "b"}));
  }
  coordinator->add_option("--transfer", specs, "ID:AMOUNT (repeatable)")->required();
  report->add_option("--id", ids, "Also say what the inbox decided about this transfer's try");
  coordinator->add_option("--slow-try", slow_try,
                          "Hold this transfer's try-b back (a slow network)");
  coordinator->add_option("--try-timeout-ms", timeout_ms, "Cancel a transfer not tried by then")
      ->capture_default_str();
  coordinator->add_option("--wait", wait_seconds, "Give up after this many seconds");
  CLI11_PARSE(app, argc, argv);

  signal(SIGTERM, OnSignal);
  signal(SIGINT, OnSignal);
  if (*bank_cmd) return Bank(bank, broker, db);
  if (*coordinator) {
    std::vector<Transfer> transfers;
    for (const std::string& spec : specs) {
      transfers.push_back(
          {spec.substr(0, spec.find(':')), std::stoll(spec.substr(spec.find(':') + 1))});
    }
    return Coordinator(broker, db, transfers, slow_try, std::chrono::milliseconds(timeout_ms),
                       wait_seconds);
  }
  return Report(bank, db, ids);
}
