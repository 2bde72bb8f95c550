// Outbox lifecycle: calls from other threads while Start and Shutdown run,
// commits after the Outbox is gone, restarts in one process. Every call
// gets a clear status, nothing crashes, and every committed row is sent
// once in the end.
#include <gtest/gtest.h>

#include <atomic>
#include <set>
#include <thread>

#include "tests/testutil/testutil.h"
#include "txmq/outbox.h"

namespace txmq {
namespace {

using namespace std::chrono_literals;
using testing::WaitFor;

class OutboxShutdown : public ::testing::Test {
 protected:
  void SetUp() override {
    options_ = testing::TestBrokerOptions(dir_.Sub("broker"));
    broker_ = testing::StartBroker(options_);
    ASSERT_NE(broker_, nullptr);
    options_.listen = broker_->endpoint();
    auto store = LocalStore::Open(dir_.Sub("orders"));
    ASSERT_TRUE(store.ok());
    store_ = std::move(store.value());
  }

  OutboxOptions Opts() {
    OutboxOptions o;
    o.producer = {
        .broker = options_.listen, .group = "orders", .send_timeout = 300ms, .retries = 0};
    o.backoff_initial = 20ms;
    o.backoff_max = 100ms;
    return o;
  }

  Status Commit(Outbox& outbox, const std::string& id) {
    LocalTxn tx = store_->Begin();
    if (Status s = tx.Put("order/" + id, "created"); !s.ok()) return s;
    if (Status s = outbox.Add(tx, {.topic = "orders", .key = id, .body = id, .id = id}); !s.ok()) {
      return s;
    }
    Status s = tx.Commit();
    if (s.ok()) {
      std::lock_guard<std::mutex> lock(mu_);
      committed_.insert(id);
    }
    return s;
  }

  // With the broker up: a fresh outbox sends everything, each row once.
  void ExpectEverythingSentOnce() {
    if (!broker_) broker_ = testing::StartBroker(options_);
    ASSERT_NE(broker_, nullptr);
    {
      Outbox outbox(*store_, Opts());
      ASSERT_TRUE(outbox.Start().ok());
      ASSERT_TRUE(outbox.Flush(30s).ok()) << outbox.stats().last_error;
    }
    auto seen = testing::DrainTopic(broker_->endpoint(), "orders", committed_.size(), 500ms);
    std::set<std::string> delivered;
    for (const auto& [id, times] : seen) {
      EXPECT_EQ(times, 1) << id;
      delivered.insert(id);
    }
    EXPECT_EQ(delivered, committed_);
  }

  testing::TempDir dir_;
  BrokerOptions options_;
  std::unique_ptr<Broker> broker_;
  std::unique_ptr<LocalStore> store_;
  std::mutex mu_;
  std::set<std::string> committed_;  // guarded by mu_
};

TEST_F(OutboxShutdown, StartTwiceIsRefusedShutdownIsIdempotentAndARestartSendsTheRest) {
  Outbox outbox(*store_, Opts());
  ASSERT_TRUE(outbox.Start().ok());
  Status again = outbox.Start();
  EXPECT_EQ(again.code(), StatusCode::kFailedPrecondition) << again.ToString();
  ASSERT_TRUE(Commit(outbox, "a").ok());
  ASSERT_TRUE(outbox.Flush(10s).ok());
  outbox.Shutdown();
  outbox.Shutdown();
  ASSERT_TRUE(Commit(outbox, "b").ok()) << "rows may be added while the relay is stopped";
  Status stopped = outbox.Flush(10s);
  EXPECT_EQ(stopped.code(), StatusCode::kFailedPrecondition) << stopped.ToString();
  EXPECT_NE(stopped.message().find("not running"), std::string::npos) << stopped.ToString();
  ASSERT_TRUE(outbox.Start().ok());
  ASSERT_TRUE(outbox.Flush(10s).ok());
  EXPECT_EQ(outbox.stats().pending, 0u);
  outbox.Shutdown();
  ExpectEverythingSentOnce();
}

TEST_F(OutboxShutdown, FlushReturnsWhenShutdownStopsTheRelay) {
  broker_->Stop();  // rows stay pending
  broker_.reset();
  Outbox outbox(*store_, Opts());
  EXPECT_EQ(outbox.Flush(10s).code(), StatusCode::kOk) << "nothing pending";
  ASSERT_TRUE(Commit(outbox, "a").ok());
  const auto before_start = std::chrono::steady_clock::now();
  EXPECT_EQ(outbox.Flush(60s).code(), StatusCode::kFailedPrecondition) << "not started";
  EXPECT_LT(std::chrono::steady_clock::now() - before_start, 5s);
  ASSERT_TRUE(outbox.Start().ok());
  std::atomic<bool> flushing{false};
  Status flushed;
  std::thread flusher([&] {
    flushing = true;
    flushed = outbox.Flush(60s);
  });
  ASSERT_TRUE(WaitFor([&] { return flushing.load(); }));
  std::this_thread::sleep_for(200ms);  // most likely inside the wait by now
  const auto shutdown_at = std::chrono::steady_clock::now();
  outbox.Shutdown();
  flusher.join();
  EXPECT_LT(std::chrono::steady_clock::now() - shutdown_at, 10s)
      << "Flush did not wait out its 60 s";
  EXPECT_EQ(flushed.code(), StatusCode::kFailedPrecondition) << flushed.ToString();
  EXPECT_NE(flushed.message().find("1 rows wait in the store"), std::string::npos)
      << flushed.ToString();
  EXPECT_EQ(Outbox::List(*store_, false).size(), 1u) << "not acknowledged: still pending";
  ExpectEverythingSentOnce();
}

TEST_F(OutboxShutdown, ACommitAfterTheOutboxIsGoneWaitsInTheStore) {
  auto outbox = std::make_unique<Outbox>(*store_, Opts());
  ASSERT_TRUE(outbox->Start().ok());
  LocalTxn tx = store_->Begin();
  ASSERT_TRUE(tx.Put("order/late", "created").ok());
  ASSERT_TRUE(outbox->Add(tx, {.topic = "orders", .key = "late", .id = "late"}).ok());
  outbox.reset();
  ASSERT_TRUE(tx.Commit().ok());
  committed_.insert("late");
  EXPECT_EQ(Outbox::List(*store_, false).size(), 1u);
  ExpectEverythingSentOnce();
}

TEST_F(OutboxShutdown, CallsFromOtherThreadsWhileStartAndShutdownRun) {
  Outbox outbox(*store_, Opts());
  std::atomic<bool> stop{false};
  std::atomic<int> unexpected{0};
  auto expect = [&](const Status& s, std::initializer_list<StatusCode> codes, const char* call) {
    for (StatusCode c : codes) {
      if (s.code() == c) return;
    }
    ++unexpected;
    ADD_FAILURE() << call << ": " << s.ToString();
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < 2; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; !stop; ++i) {
        expect(Commit(outbox, "t" + std::to_string(t) + "-" + std::to_string(i)), {StatusCode::kOk},
               "commit");
      }
    });
  }
  threads.emplace_back([&] {
    while (!stop) {
      expect(outbox.Flush(50ms),
             {StatusCode::kOk, StatusCode::kTimeout, StatusCode::kFailedPrecondition}, "flush");
      expect(outbox.Requeue("no-such-row"), {StatusCode::kNotFound}, "requeue");
      expect(outbox.Delete("no-such-row"), {StatusCode::kNotFound}, "delete");
      (void)outbox.stats();
    }
  });
  // Start and Shutdown from two more threads at once, and from here, with
  // the broker going away and coming back in between.
  for (int round = 0; round < 6; ++round) {
    std::thread starter([&] {
      expect(outbox.Start(), {StatusCode::kOk, StatusCode::kFailedPrecondition}, "start");
    });
    std::thread stopper([&] { outbox.Shutdown(); });
    starter.join();
    stopper.join();
    expect(outbox.Start(), {StatusCode::kOk, StatusCode::kFailedPrecondition}, "start");
    std::this_thread::sleep_for(50ms);
    if (round == 2) {
      broker_->Stop();
      broker_.reset();
    }
    if (round == 4) {
      broker_ = testing::StartBroker(options_);
      ASSERT_NE(broker_, nullptr);
    }
    outbox.Shutdown();
  }
  stop = true;
  for (auto& t : threads) t.join();
  EXPECT_EQ(unexpected, 0);
  EXPECT_GT(committed_.size(), 10u);
  ExpectEverythingSentOnce();
}

}  // namespace
}  // namespace txmq
