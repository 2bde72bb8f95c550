// The outbox relay: a row that keeps failing transiently is parked once it
// is older than max_age (however few attempts it had), and rows committed
// by several threads at once still reach consumers in commit order per key,
// across broker restarts in the middle.
#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include "tests/testutil/testutil.h"
#include "txmq/consumer.h"
#include "txmq/outbox.h"

namespace txmq {
namespace {

using namespace std::chrono_literals;
using testing::WaitFor;
using Clock = std::chrono::steady_clock;

class OutboxRelay : public ::testing::Test {
 protected:
  void SetUp() override {
    options_ = testing::TestBrokerOptions(dir_.Sub("broker"));
    broker_ = testing::StartBroker(options_);
    ASSERT_NE(broker_, nullptr);
    options_.listen = broker_->endpoint();  // a restart comes back on the same port
    auto store = LocalStore::Open(dir_.Sub("orders"));
    ASSERT_TRUE(store.ok());
    store_ = std::move(store.value());
  }

  OutboxOptions Opts() {
    OutboxOptions o;
    o.producer = {
        .broker = broker_->endpoint(), .group = "orders", .send_timeout = 300ms, .retries = 0};
    o.backoff_initial = 20ms;
    o.backoff_max = 100ms;
    return o;
  }

  Status Commit(Outbox& outbox, const std::string& key, const std::string& id) {
    LocalTxn tx = store_->Begin();
    Status s = outbox.Add(tx, {.topic = "orders", .key = key, .body = id, .id = id});
    if (!s.ok()) return s;
    return tx.Commit();
  }

  testing::TempDir dir_;
  BrokerOptions options_;
  std::unique_ptr<Broker> broker_;
  std::unique_ptr<LocalStore> store_;
};

// The broker is away. A row with max_age 1.5 s (and no attempt limit) is
// retried every ~100 ms and parked at its first failure past 1.5 s.
TEST_F(OutboxRelay, ARowOlderThanMaxAgeIsParked) {
  OutboxOptions opts = Opts();
  opts.max_attempts = 0;
  opts.max_age = 1500ms;
  Outbox outbox(*store_, opts);
  ASSERT_TRUE(outbox.Start().ok());
  broker_->Stop();
  broker_.reset();
  const Clock::time_point committed = Clock::now();
  ASSERT_TRUE(Commit(outbox, "k", "row-1").ok());
  ASSERT_TRUE(WaitFor([&] { return outbox.stats().parked == 1; }, 20s))
      << "pending " << outbox.stats().pending << ", last error " << outbox.stats().last_error;
  const auto parked_after = Clock::now() - committed;
  EXPECT_GE(parked_after, 1400ms) << "parked before it was max_age old";
  EXPECT_EQ(outbox.stats().pending, 0u);
  auto parked = Outbox::List(*store_, true);
  ASSERT_EQ(parked.size(), 1u);
  EXPECT_EQ(parked[0].id, "row-1");
  // Age, not a count: it was tried again and again before.
  EXPECT_GE(parked[0].attempts, 3u);
  EXPECT_FALSE(parked[0].last_error.empty());
}

// Four threads commit rows of five shared keys as fast as they can while
// the relay sends them; the broker is down three times meanwhile. Whenever one
// commit returned before another began, a consumer must see them in that
// order if they share a key.
TEST_F(OutboxRelay, ConcurrentCommittersKeepPerKeyOrder) {
  Outbox outbox(*store_, Opts());
  ASSERT_TRUE(outbox.Start().ok());
  struct Span {
    uint64_t begin, end;  // ticks of a shared counter around the commit
  };
  std::mutex mu;
  std::map<std::string, Span> spans;  // row id -> its commit
  std::atomic<uint64_t> tick{0};
  std::atomic<size_t> committed{0};
  constexpr int kThreads = 4, kPerThread = 120, kKeys = 5;
  auto commit_rows = [&](int t) {
    for (int i = 0; i < kPerThread; ++i) {
      const std::string key = "k" + std::to_string((t + i) % kKeys);
      const std::string id = "t" + std::to_string(t) + "-" + std::to_string(i);
      const uint64_t begin = tick++;
      Status s = Commit(outbox, key, id);
      const uint64_t end = tick++;
      EXPECT_TRUE(s.ok()) << s.ToString();
      std::lock_guard<std::mutex> lock(mu);
      spans[id] = {begin, end};
      ++committed;
      std::this_thread::sleep_for(1ms);  // lets the relay send between commits
    }
  };
  std::vector<std::thread> threads;
  struct JoinAll {  // also when an assertion below returns early
    std::vector<std::thread>& threads;
    ~JoinAll() {
      for (auto& t : threads) {
        if (t.joinable()) t.join();
      }
    }
  } join_all{threads};
  for (int t = 0; t < kThreads; ++t) threads.emplace_back(commit_rows, t);
  constexpr size_t kRows = kThreads * kPerThread;
  // Down three times, each for a sixth of the commits: sends in flight
  // fail, rows pile up, and all are retried at once.
  for (size_t sixth : {1, 3, 5}) {
    ASSERT_TRUE(WaitFor([&] { return committed >= kRows * sixth / 6; }, 30s));
    broker_->Stop();
    broker_.reset();
    if (sixth == 5) break;  // back after the last commit
    ASSERT_TRUE(WaitFor([&] { return committed >= kRows * (sixth + 1) / 6; }, 30s));
    broker_ = testing::StartBroker(options_);
    ASSERT_NE(broker_, nullptr);
  }
  for (auto& t : threads) t.join();
  broker_ = testing::StartBroker(options_);
  ASSERT_NE(broker_, nullptr);
  ASSERT_TRUE(outbox.Flush(60s).ok()) << outbox.stats().last_error;
  EXPECT_EQ(outbox.stats().parked, 0u);

  std::map<std::string, std::vector<std::string>> by_key;  // arrival order
  size_t total = 0;
  Consumer c({.broker = broker_->endpoint(),
              .group = "reader",
              .handler_threads = 1,
              .max_in_flight = 1,
              .long_poll = 300ms});
  ASSERT_TRUE(c.Subscribe("orders", [&](const Received& m) {
                 std::lock_guard<std::mutex> lock(mu);
                 by_key[m.key].push_back(m.id);
                 ++total;
                 return ConsumeResult::Success();
               }).ok());
  ASSERT_TRUE(c.Start().ok());
  EXPECT_TRUE(WaitFor(
      [&] {
        std::lock_guard<std::mutex> lock(mu);
        return total >= kRows;
      },
      60s));
  c.Shutdown();

  std::lock_guard<std::mutex> lock(mu);
  EXPECT_EQ(total, kRows) << "each row once";
  ASSERT_EQ(by_key.size(), static_cast<size_t>(kKeys));
  size_t inversions = 0;
  std::string first;
  for (const auto& [key, ids] : by_key) {
    for (size_t i = 0; i < ids.size(); ++i) {
      for (size_t j = i + 1; j < ids.size(); ++j) {
        // ids[j] arrived later but its commit had ended before ids[i]'s began.
        if (spans.at(ids[j]).end < spans.at(ids[i]).begin) {
          if (inversions++ == 0) first = key + ": " + ids[j] + " committed before " + ids[i];
        }
      }
    }
  }
  EXPECT_EQ(inversions, 0u) << "first: " << first;
}

}  // namespace
}  // namespace txmq
