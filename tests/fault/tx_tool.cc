// txmq-test-txtool: a transactional producer in its own process, so fault
// tests can SIGKILL it at any moment.
//
//   txmq-test-txtool half   BROKER GROUP TOPIC COUNT READY_FILE [KEY BODY]
//     sends COUNT transactions whose local outcome is UNKNOWN (bodies
//     "half-<i>", or KEY and BODY), writes "<tx id> <message id>" per
//     transaction to READY_FILE, then waits to be killed (its checker answers
//     UNKNOWN).
//   txmq-test-txtool copier BROKER GROUP TOPIC FIRST COUNT THREADS DECISIONS
//     runs transactions FIRST..FIRST+COUNT-1 on THREADS threads. Transaction
//     i commits when i%10 < 7, rolls back when i%10 is 7 or 8, and is
//     abandoned (never ended) when i%10 == 9. The local transaction appends
//     "<message id> COMMIT|ROLLBACK" to DECISIONS and fdatasyncs it before
//     the end is sent: that file is the "database" checkers answer from.
//   txmq-test-txtool dying-copier BROKER GROUP TOPIC FIRST COUNT THREADS DECISIONS
//     as copier, except that transaction i with i%10 == 9 is decided too
//     (commit when (i/10)%2 == 0, else rollback), its decision made durable
//     in DECISIONS, and then the process kills itself (SIGKILL) before the
//     end is sent: a producer killed knowing the outcome, with every other
//     transaction it had in flight cut in whatever phase it was. Only a
//     check-back can end those; checkers answer from DECISIONS alone.
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/fault/decisions.h"
#include "txmq/transaction_producer.h"

namespace {

using txmq::TxState;
using txmq::testing::ReadDecisions;

int Half(const std::string& broker, const std::string& group, const std::string& topic, int count,
         const std::string& ready, const std::string& key = "", const std::string& body = "") {
  txmq::TransactionProducer p({.broker = broker, .group = group},
                              [](const txmq::CheckRequest&) { return TxState::kUnknown; });
  if (!p.Start().ok()) return 1;
  std::ofstream out(ready + ".tmp");
  for (int i = 0; i < count; ++i) {
    auto r = p.SendInTransaction(
        {.topic = topic, .key = key, .body = body.empty() ? "half-" + std::to_string(i) : body},
        [](const txmq::Message&) { return TxState::kUnknown; });
    if (!r.ok()) {
      std::cerr << r.status.ToString() << "\n";
      return 1;
    }
    out << r.transaction_id << " " << r.message_ids[0] << "\n";
  }
  out.close();
  std::rename((ready + ".tmp").c_str(), ready.c_str());
  while (true) std::this_thread::sleep_for(std::chrono::seconds(1));
}

int Copier(const std::string& broker, const std::string& group, const std::string& topic, int first,
           int count, int threads, const std::string& decisions, bool dies = false) {
  int fd = open(decisions.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  if (fd < 0) return 1;
  // An earlier copier killed mid-write (SIGKILL can cut a write short at a
  // page boundary) may have left a line without its end: end it, so this
  // copier's first line is not read as part of it ("copy-24" + "copy-3005
  // COMMIT" read as one decision for an id that never existed).
  if (write(fd, "\n", 1) != 1) return 1;
  txmq::TransactionProducer p({.broker = broker,
                               .group = group,
                               .send_timeout = std::chrono::milliseconds(1000),
                               .retries = 100},
                              [&decisions](const txmq::CheckRequest& check) {
                                auto known = ReadDecisions(decisions);
                                auto it = known.find(check.message().id);
                                // Alive, so an undecided one may still be decided: never guess.
                                return it == known.end() ? TxState::kUnknown : it->second;
                              });
  if (!p.Start().ok()) return 1;
  std::atomic<int> next{first};
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&] {
      for (int i = next++; i < first + count; i = next++) {
        const std::string id = "copy-" + std::to_string(i);
        auto r = p.SendInTransaction(
            {.topic = topic, .key = std::to_string(i % 13), .body = id, .id = id},
            [&](const txmq::Message&) {
              if (i % 10 == 9 && !dies) return TxState::kUnknown;  // abandoned: never decided
              const TxState decision = i % 10 < 7          ? TxState::kCommit
                                       : i % 10 < 9        ? TxState::kRollback
                                       : (i / 10) % 2 == 0 ? TxState::kCommit
                                                           : TxState::kRollback;
              const std::string line =
                  id + (decision == TxState::kCommit ? " COMMIT\n" : " ROLLBACK\n");
              // The "local commit": durable before the broker hears of it.
              if (write(fd, line.data(), line.size()) != static_cast<ssize_t>(line.size()) ||
                  fdatasync(fd) != 0) {
                throw std::runtime_error("decision not written");
              }
              if (i % 10 == 9) raise(SIGKILL);  // dies knowing the outcome, before the end
              return decision;
            });
        (void)r;
      }
    });
  }
  for (auto& w : workers) w.join();
  close(fd);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> a(argv + 1, argv + argc);
  if (a.size() == 6 && a[0] == "half") return Half(a[1], a[2], a[3], std::stoi(a[4]), a[5]);
  if (a.size() == 8 && a[0] == "half") {
    return Half(a[1], a[2], a[3], std::stoi(a[4]), a[5], a[6], a[7]);
  }
  if (a.size() == 8 && a[0] == "copier") {
    return Copier(a[1], a[2], a[3], std::stoi(a[4]), std::stoi(a[5]), std::stoi(a[6]), a[7]);
  }
  if (a.size() == 8 && a[0] == "dying-copier") {
    return Copier(a[1], a[2], a[3], std::stoi(a[4]), std::stoi(a[5]), std::stoi(a[6]), a[7], true);
  }
  std::cerr << "usage: see the top of tests/fault/tx_tool.cc\n";
  return 2;
}
