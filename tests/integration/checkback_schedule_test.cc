// Check-back scheduling as a TransactionProducer's checker sees it: the
// interval between checks of one transaction grows by 1.5x up to its cap;
// the broker keeps at most 64 checks in flight per producer; a producer
// whose checker is busy answers only the latest of repeated checks of one
// transaction.
#include <gtest/gtest.h>

#include <algorithm>
#include <condition_variable>
#include <iostream>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include "tests/testutil/testutil.h"
#include "txmq/transaction_producer.h"

namespace txmq {
namespace {

using namespace std::chrono_literals;
using testing::WaitFor;
using Clock = std::chrono::steady_clock;

// Lets hanging checkers go when a test ends early (declared after the
// producer, so it runs before the producer's shutdown waits for them).
class Release {
 public:
  Release(std::mutex& mu, std::condition_variable& cv, bool& flag)
      : mu_(mu), cv_(cv), flag_(flag) {}
  ~Release() { Now(); }
  void Now() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      flag_ = true;
    }
    cv_.notify_all();
  }

 private:
  std::mutex& mu_;
  std::condition_variable& cv_;
  bool& flag_;
};

class CheckbackSchedule : public ::testing::Test {
 protected:
  void StartBrokerWith(std::chrono::milliseconds interval, std::chrono::milliseconds interval_max,
                       std::chrono::milliseconds check_timeout) {
    options_ = testing::TestBrokerOptions(dir_.Sub("data"));
    options_.check_interval = interval;
    options_.check_interval_max = interval_max;
    options_.check_timeout = check_timeout;
    options_.check_max = 1000;  // never stuck during a test
    broker_ = testing::StartBroker(options_);
    ASSERT_NE(broker_, nullptr);
  }

  // A transaction whose local part says UNKNOWN: only check-back ends it.
  std::string SendUndecided(TransactionProducer& producer, const std::string& key) {
    TransactionResult r =
        producer.SendInTransaction({.topic = "orders", .key = key, .body = key},
                                   [](const Message&) { return TxState::kUnknown; });
    EXPECT_TRUE(r.ok()) << r.status.ToString();
    return r.transaction_id;
  }

  testing::TempDir dir_;
  BrokerOptions options_;
  std::unique_ptr<Broker> broker_;
};

// Answered UNKNOWN every time, one transaction is checked at
// interval * 1.5^(n-1) after its n-th check, never more than interval_max.
TEST_F(CheckbackSchedule, IntervalGrowsByHalfAndStopsAtTheCap) {
  StartBrokerWith(200ms, 1000ms, 3s);
  std::mutex mu;
  std::vector<std::pair<uint32_t, Clock::time_point>> checks;  // check_count, arrival
  TransactionProducer producer({.broker = broker_->endpoint(), .group = "orders"},
                               [&](const CheckRequest& c) {
                                 std::lock_guard<std::mutex> lock(mu);
                                 checks.emplace_back(c.check_count, Clock::now());
                                 return TxState::kUnknown;
                               });
  ASSERT_TRUE(producer.Start().ok());
  SendUndecided(producer, "a");
  // 200 + 300 + 450 + 675 + 1000 * 4 ms after the first check.
  constexpr size_t kChecks = 9;
  ASSERT_TRUE(WaitFor(
      [&] {
        std::lock_guard<std::mutex> lock(mu);
        return checks.size() >= kChecks;
      },
      40s));
  producer.Shutdown();

  std::lock_guard<std::mutex> lock(mu);
  std::vector<int64_t> gaps;  // gaps[i]: ms between check i+1 and check i+2
  for (size_t i = 0; i + 1 < kChecks; ++i) {
    ASSERT_EQ(checks[i].first, i + 1) << "checks arrive in order, counted from 1";
    gaps.push_back(std::chrono::duration_cast<std::chrono::milliseconds>(checks[i + 1].second -
                                                                         checks[i].second)
                       .count());
  }
  std::string seen;
  for (int64_t g : gaps) seen += std::to_string(g) + "ms ";
  std::cout << "gaps between checks: " << seen << "\n";
  SCOPED_TRACE("gaps between checks: " + seen);
  // A check arriving late shortens the next gap by as much; 100 ms of slack.
  const int64_t expected[] = {200, 300, 450, 675, 1000, 1000, 1000, 1000};
  for (size_t i = 0; i < gaps.size(); ++i) {
    EXPECT_GE(gaps[i], expected[i] - 100) << "gap after check " << i + 1;
  }
  // Growth: the uncapped gaps rise (a fixed interval would not).
  EXPECT_GT(gaps[3], gaps[0] + 300);
  // The cap: without it the last three gaps would be 1.5 s, 2.3 s, 3.4 s.
  // Noise only lengthens a gap, so the shortest of them must be near 1 s.
  EXPECT_LT(*std::min_element(gaps.begin() + 5, gaps.end()), 1350);
}

// With every check of a producer unanswered (its checker hangs), the broker
// sends it 64 and no more, however many transactions are due; each answer
// lets the next one go.
TEST_F(CheckbackSchedule, AtMost64ChecksInFlightPerProducer) {
  // Checks are due 300 ms after the half; no repeat or timeout during the test.
  StartBrokerWith(60s, 60s, 60s);
  std::mutex mu;
  std::condition_variable cv;
  bool release = false;
  size_t calls = 0;
  ProducerOptions opts{.broker = broker_->endpoint(), .group = "orders"};
  opts.checker_threads = 128;  // every check the broker sends runs at once
  TransactionProducer producer(opts, [&](const CheckRequest&) {
    std::unique_lock<std::mutex> lock(mu);
    ++calls;
    cv.wait(lock, [&] { return release; });
    return TxState::kCommit;
  });
  Release releaser(mu, cv, release);
  ASSERT_TRUE(producer.Start().ok());
  constexpr size_t kTransactions = 100;
  for (size_t i = 0; i < kTransactions; ++i) SendUndecided(producer, "k" + std::to_string(i));
  auto calls_now = [&] {
    std::lock_guard<std::mutex> lock(mu);
    return calls;
  };
  EXPECT_TRUE(WaitFor([&] { return calls_now() >= 64; }, 20s)) << calls_now();
  // All 100 are due by now (300 ms after their halves); the broker holds the
  // other 36 back. Give it time to (wrongly) send them.
  std::this_thread::sleep_for(1500ms);
  EXPECT_EQ(calls_now(), 64u);
  releaser.Now();
  EXPECT_TRUE(WaitFor([&] { return calls_now() >= kTransactions; }, 20s)) << calls_now();
  producer.Shutdown();
}

// The checker (one thread) hangs on one transaction while the broker checks
// another one again and again: the producer queues that one once and, when
// the checker is free, runs it once with the latest check count; its answer
// is the one the broker waits for, so the transaction commits.
TEST_F(CheckbackSchedule, RepeatedChecksOfOneTransactionCoalesceWhileTheCheckerIsBusy) {
  StartBrokerWith(150ms, 150ms, 100ms);
  std::mutex mu;
  std::condition_variable cv;
  bool release = false;
  std::string blocked_tx;
  std::map<std::string, std::vector<uint32_t>> seen;  // tx -> check counts run
  ProducerOptions opts{.broker = broker_->endpoint(), .group = "orders"};
  opts.checker_threads = 1;
  TransactionProducer producer(opts, [&](const CheckRequest& c) {
    std::unique_lock<std::mutex> lock(mu);
    seen[c.transaction_id].push_back(c.check_count);
    if (blocked_tx.empty()) blocked_tx = c.transaction_id;
    if (c.transaction_id == blocked_tx) cv.wait(lock, [&] { return release; });
    return TxState::kCommit;
  });
  Release releaser(mu, cv, release);
  ASSERT_TRUE(producer.Start().ok());
  const std::string a = SendUndecided(producer, "a");
  const std::string b = SendUndecided(producer, "b");
  ASSERT_TRUE(WaitFor(
      [&] {
        std::lock_guard<std::mutex> lock(mu);
        return !blocked_tx.empty();
      },
      20s));
  // Both are re-checked every ~150 ms while the checker hangs: 2 s is
  // about a dozen checks each.
  std::this_thread::sleep_for(2s);
  const std::string other = blocked_tx == a ? b : a;
  {
    std::lock_guard<std::mutex> lock(mu);
    EXPECT_EQ(seen.count(other), 0u) << "the only checker thread is busy";
  }
  releaser.Now();
  // The queued check of the other transaction runs, answers COMMIT, and the
  // broker takes it: the transaction ends and is checked no more.
  ASSERT_TRUE(WaitFor(
      [&] {
        std::lock_guard<std::mutex> lock(mu);
        return seen.count(other) > 0;
      },
      20s));
  std::this_thread::sleep_for(1s);  // room for any further (wrong) runs
  producer.Shutdown();
  std::lock_guard<std::mutex> lock(mu);
  // About a dozen checks arrived; queued, they are one. (A second run is
  // possible if a check crossed the COMMIT answer on the wire.)
  ASSERT_GE(seen[other].size(), 1u);
  EXPECT_LE(seen[other].size(), 2u) << "queued repeats of one check run once";
  EXPECT_GE(seen[other][0], 4u) << "the run answers the latest check";
  // The hung transaction: its first check, then at most one queued repeat
  // (and one crossing its answer).
  EXPECT_LE(seen[blocked_tx].size(), 3u);
}

}  // namespace
}  // namespace txmq
