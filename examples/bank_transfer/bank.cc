// The bank transfer example: Bob, at the paying bank, pays Smith, at the
// receiving bank, many times. Each bank is its own service with its own
// LevelDB store; the money moves only through txmq.
//
//   sender:   the debit of Bob's account and the transfer message commit
//             together: a transactional message whose local transaction
//             is the debit, on a store-backed TransactionProducer (the
//             library answers the broker's check-backs from the store).
//             Every tenth transfer is declined locally (rolled back): its
//             message is never delivered. Every fiftieth goes to Carol,
//             who has no account at the receiving bank: the receiver
//             answers with a compensation and the sender refunds Bob
//             (an undo through its inbox, once per transfer).
//   receiver: credits Smith once per transfer through an idempotent inbox
//             (the credit and the dedup record commit together).
//   report:   balances and counts of a stopped service's store.
//
//   txmq-example-bank sender   --broker URL --db DIR --transfers 1000 [--crash-at 137,411]
//                              [--decided-file FILE]
//   txmq-example-bank receiver --broker URL --db DIR [--status-file FILE]
//   txmq-example-bank report   --db DIR
//
// --crash-at N kills the sender (SIGKILL, by itself) right after transfer
// N's local commit, before the broker heard the outcome: the broker asks
// the group's producers, and the restarted sender answers from its store.
// A restarted sender goes on at the first transfer it has not committed.
// With --decided-file it writes that file once every transfer is decided
// and then keeps serving (answering check-backs) until SIGTERM.
#include <signal.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <random>
#include <set>
#include <string>
#include <thread>

#include "examples/broker_flags.h"
#include "txmq/compensation.h"
#include "txmq/consumer.h"
#include "txmq/inbox.h"
#include "txmq/local_store.h"
#include "txmq/outbox.h"
#include "txmq/transaction_producer.h"

namespace {

constexpr int64_t kOpeningBalance = 1'000'000;
constexpr char kTopic[] = "transfers";

std::atomic<bool> stop{false};
void OnSignal(int) { stop = true; }

int64_t Number(const txmq::Result<std::string>& value, int64_t absent = 0) {
  return value.ok() ? std::stoll(value.value()) : absent;
}

// The same amounts on every run of a seed, also after a restart.
int64_t AmountOf(uint64_t seed, int64_t transfer) {
  std::mt19937_64 rng(seed * 1'000'003 + static_cast<uint64_t>(transfer));
  return std::uniform_int_distribution<int64_t>(1, 100)(rng);
}

bool Declined(int64_t transfer) { return transfer % 10 == 9; }
// Carol has no account at the receiving bank.
std::string PayeeOf(int64_t transfer) { return transfer % 50 == 25 ? "carol" : "smith"; }

// How many keys start with `prefix`.
int64_t Count(const txmq::LocalStore& store, const std::string& prefix) {
  int64_t count = 0;
  store.Scan(prefix, [&](std::string_view, std::string_view) {
    ++count;
    return true;
  });
  return count;
}

// Writes `count` to `file` whole (a reader never sees half a number).
void Tell(const std::string& file, int64_t count) {
  if (file.empty()) return;
  { std::ofstream(file + ".tmp") << count << "\n"; }
  std::rename((file + ".tmp").c_str(), file.c_str());
}

int Sender(const txmq::examples::BrokerFlags& broker, const std::string& db, int64_t transfers,
           uint64_t seed, const std::set<int64_t>& crash_at, const std::string& decided_file,
           const std::string& status_file) {
  auto opened = txmq::LocalStore::Open(db);
  if (!opened.ok()) {
    std::cerr << "sender: " << opened.status().ToString() << "\n";
    return 1;
  }
  txmq::LocalStore& store = **opened;
  if (!store.Get("account/bob").ok()) {
    txmq::LocalTxn tx = store.Begin();
    if (!tx.Put("account/bob", std::to_string(kOpeningBalance)).ok() || !tx.Commit().ok()) {
      return 1;
    }
  }
  // kBackground: the local commit is the decision; the broker learns it from
  // an end sent behind the call, or, after a crash, from its check-back.
  txmq::TransactionProducer producer({.broker = broker.url,
                                      .curve_key = broker.curve_key,
                                      .server_key = broker.server_key,
                                      .group = "bank-a",
                                      .end_mode = txmq::TransactionEndMode::kBackground},
                                     store);
  if (txmq::Status s = producer.Start(); !s.ok()) {
    std::cerr << "sender: " << s.ToString() << "\n";
    return 1;
  }
  // Refunds: a transfer the receiving bank could not credit comes back as a
  // compensation, and Bob gets the amount back, once.
  txmq::Inbox inbox(store, {.group = "bank-a-refunds"});
  txmq::Consumer refunds({.broker = broker.url,
                          .curve_key = broker.curve_key,
                          .server_key = broker.server_key,
                          .group = "bank-a-refunds",
                          .long_poll = std::chrono::milliseconds(500)});
  txmq::Status s = txmq::OnCompensation(
      refunds, inbox, "bank-a", [](txmq::LocalTxn& tx, const txmq::Compensation& c) {
        const int64_t amount = Number(tx.Get("debit/" + c.key));
        const int64_t balance = Number(tx.Get("account/bob"));
        if (!tx.Put("account/bob", std::to_string(balance + amount)).ok() ||
            !tx.Put("refund/" + c.key, std::to_string(amount)).ok()) {
          return txmq::ConsumeResult::RetryLater();
        }
        std::cerr << "sender: refunded " << c.key << " (" << c.reason << ")\n";
        return txmq::ConsumeResult::Success();
      });
  if (s.ok()) s = refunds.Start();
  if (!s.ok()) {
    std::cerr << "sender: " << s.ToString() << "\n";
    return 1;
  }
  int64_t next = Number(store.Get("transfer/next"));
  if (next > 0) std::cerr << "sender: restarted; going on at transfer " << next << "\n";
  for (; next < transfers && !stop; ++next) {
    const int64_t amount = AmountOf(seed, next);
    const std::string id = "t-" + std::to_string(next);
    auto transfer = [&] {
      return producer.SendInTransaction(
          {.topic = kTopic,
           .key = id,
           .body = "bob:" + PayeeOf(next) + ":" + std::to_string(amount)},
          [&](txmq::LocalTxn& tx, const txmq::Message&) {
            if (Declined(next)) return txmq::TxState::kRollback;
            const int64_t balance = Number(tx.Get("account/bob"));
            if (!tx.Put("account/bob", std::to_string(balance - amount)).ok() ||
                !tx.Put("debit/" + id, std::to_string(amount)).ok() ||
                !tx.Put("transfer/next", std::to_string(next + 1)).ok()) {
              return txmq::TxState::kRollback;
            }
            return txmq::TxState::kCommit;
          });
    };
    // ABORTED: a refund changed Bob's balance between the read and the
    // commit (the store commits optimistically); nothing was written and
    // the half was rolled back, so the transfer simply runs again.
    auto result = transfer();
    for (int attempt = 1; result.status.code() == txmq::StatusCode::kAborted && attempt < 100;
         ++attempt) {
      result = transfer();
    }
    if (!result.ok()) {
      std::cerr << "sender: transfer " << id << ": " << result.status.ToString() << "\n";
      return 1;
    }
    if (Declined(next)) {
      // Nothing committed locally: remember only that it was decided.
      txmq::LocalTxn tx = store.Begin();
      if (!tx.Put("transfer/next", std::to_string(next + 1)).ok() || !tx.Commit().ok()) return 1;
    }
    if (crash_at.count(next) > 0 && !Declined(next)) {
      std::cerr << "sender: killed after the local commit of " << id << " (transaction "
                << result.transaction_id << ")\n";
      raise(SIGKILL);
    }
  }
  std::cout << "sender: " << next << " transfers decided\n" << std::flush;
  if (!decided_file.empty()) {
    // A service keeps running: its producer answers the broker's checks of
    // transactions an earlier run left undecided (killed after the local
    // commit). Until SIGTERM.
    std::ofstream(decided_file) << next << "\n";
    while (!stop) {
      Tell(status_file, Count(store, "refund/"));
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
  (void)producer.FlushEnds(std::chrono::seconds(10));
  refunds.Shutdown();
  producer.Shutdown();
  return 0;
}

int Receiver(const txmq::examples::BrokerFlags& broker, const std::string& db,
             const std::string& status_file) {
  auto opened = txmq::LocalStore::Open(db);
  if (!opened.ok()) {
    std::cerr << "receiver: " << opened.status().ToString() << "\n";
    return 1;
  }
  txmq::LocalStore& store = **opened;
  // The outbox carries the compensations of transfers it cannot credit.
  txmq::Outbox outbox(store, {.producer = {.broker = broker.url,
                                           .curve_key = broker.curve_key,
                                           .server_key = broker.server_key,
                                           .group = "bank-b"}});
  if (txmq::Status started = outbox.Start(); !started.ok()) {
    std::cerr << "receiver: " << started.ToString() << "\n";
    return 1;
  }
  txmq::Inbox inbox(store, {.group = "bank-b", .outbox = &outbox});
  txmq::Consumer consumer({.broker = broker.url,
                           .curve_key = broker.curve_key,
                           .server_key = broker.server_key,
                           .group = "bank-b",
                           .long_poll = std::chrono::milliseconds(500)});
  std::atomic<int64_t> credited{0};
  txmq::Status s =
      consumer.Subscribe(kTopic, inbox.Idempotent([&](txmq::LocalTxn& tx, const txmq::Received& m) {
        const size_t colon = m.body.find(':');
        const std::string payee = m.body.substr(colon + 1, m.body.rfind(':') - colon - 1);
        if (payee != "smith") return txmq::ConsumeResult::Compensate("no account " + payee);
        const int64_t amount = std::stoll(m.body.substr(m.body.rfind(':') + 1));
        const int64_t balance = Number(tx.Get("account/smith"));
        if (!tx.Put("account/smith", std::to_string(balance + amount)).ok() ||
            !tx.Put("credit/" + m.key, std::to_string(amount)).ok()) {
          return txmq::ConsumeResult::RetryLater();
        }
        credited++;
        return txmq::ConsumeResult::Success();
      }));
  if (s.ok()) s = consumer.Start();
  if (!s.ok()) {
    std::cerr << "receiver: " << s.ToString() << "\n";
    return 1;
  }
  // What it has credited so far, for whoever waits for it (run.sh).
  while (!stop) {
    Tell(status_file, Count(store, "credit/"));
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  consumer.Shutdown();
  outbox.Shutdown();
  std::cout << "receiver: credited " << credited << " transfers in this run\n";
  return 0;
}

int Report(const std::string& db) {
  auto opened = txmq::LocalStore::Open(db);
  if (!opened.ok()) {
    std::cerr << "report: " << opened.status().ToString() << "\n";
    return 1;
  }
  txmq::LocalStore& store = **opened;
  for (const char* account : {"bob", "smith"}) {
    auto balance = store.Get(std::string("account/") + account);
    if (balance.ok()) std::cout << "account " << account << " " << balance.value() << "\n";
  }
  for (const char* kind : {"debit", "credit", "refund"}) {
    int64_t count = 0, total = 0;
    store.Scan(std::string(kind) + "/", [&](std::string_view, std::string_view value) {
      ++count;
      total += std::stoll(std::string(value));
      return true;
    });
    if (count > 0) std::cout << kind << "s " << count << " total " << total << "\n";
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  txmq::examples::BrokerFlags broker;
  std::string db, status_file, crash_at, decided_file;
  int64_t transfers = 1000;
  uint64_t seed = 1;
  CLI::App app{"The txmq bank transfer example (see the top of bank.cc)"};
  app.require_subcommand(1);
  auto* sender = app.add_subcommand("sender", "Bob's bank: debits and sends transfers");
  auto* receiver = app.add_subcommand("receiver", "Smith's bank: credits each transfer once");
  auto* report = app.add_subcommand("report", "Balances and counts of a stopped service's store");
  for (CLI::App* cmd : {sender, receiver, report}) {
    cmd->add_option("--db", db, "LevelDB directory of this bank")->required();
  }
  for (CLI::App* cmd : {sender, receiver}) {
    txmq::examples::AddBrokerFlags(*cmd, broker);
  }
  sender->add_option("--transfers", transfers, "How many transfers in all")->capture_default_str();
  sender->add_option("--seed", seed, "Seed of the amounts")->capture_default_str();
  sender->add_option("--crash-at", crash_at, "Transfers after whose local commit to die: 137,411");
  sender->add_option("--decided-file", decided_file,
                     "Once all are decided, write this file and serve checks until SIGTERM");
  receiver->add_option("--status-file", status_file, "Keep the count of credits here");
  sender->add_option("--status-file", status_file,
                     "With --decided-file: keep the count of refunds here");
  CLI11_PARSE(app, argc, argv);

  signal(SIGTERM, OnSignal);
  signal(SIGINT, OnSignal);
  if (*sender) {
    std::set<int64_t> crashes;
    for (size_t at = 0; at < crash_at.size();) {
      const size_t comma = std::min(crash_at.find(',', at), crash_at.size());
      crashes.insert(std::stoll(crash_at.substr(at, comma - at)));
      at = comma + 1;
    }
    return Sender(broker, db, transfers, seed, crashes, decided_file, status_file);
  }
  if (*receiver) return Receiver(broker, db, status_file);
  return Report(db);
}
