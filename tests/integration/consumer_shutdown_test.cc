// Consumer::Shutdown against everything that can be in flight: running
// handlers, a parked long poll, acknowledgements the broker never answers,
// a concurrent Start or Shutdown, a handler that stops its own consumer.
// Each ends with a clear outcome, nothing crashes, and nothing leased is
// lost: what was not acknowledged is delivered again.
#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <set>
#include <thread>

#include "protocol/src/util.h"
#include "tests/testutil/testutil.h"
#include "txmq/consumer.h"
#include "txmq/producer.h"

namespace txmq {
namespace {

using namespace std::chrono_literals;
using testing::StartBroker;
using testing::TempDir;
using testing::TestBrokerOptions;
using testing::WaitFor;

// Holds handlers until opened.
class Gate {
 public:
  void Pass() {
    std::unique_lock<std::mutex> lock(mu_);
    ++waiting_;
    cv_.wait_for(lock, 30s, [this] { return open_; });
    --waiting_;
  }
  void Open() {
    std::lock_guard<std::mutex> lock(mu_);
    open_ = true;
    cv_.notify_all();
  }
  int waiting() {
    std::lock_guard<std::mutex> lock(mu_);
    return waiting_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool open_ = false;
  int waiting_ = 0;
};

class ConsumerShutdown : public ::testing::Test {
 protected:
  void SetUp() override {
    options_ = TestBrokerOptions(dir_.Sub("data"));
    broker_ = StartBroker(options_);
    ASSERT_NE(broker_, nullptr);
  }

  void SendN(const std::string& topic, int n) {
    Producer p({.broker = broker_->endpoint()});
    ASSERT_TRUE(p.Start().ok());
    for (int i = 0; i < n; ++i) {
      ASSERT_TRUE(p.Send({.topic = topic, .body = std::to_string(i)}).ok());
    }
  }

  ConsumerOptions Options(const std::string& group) {
    return {.broker = broker_->endpoint(), .group = group, .long_poll = 500ms};
  }

  // Everything a fresh consumer of `group` receives until `n` arrived:
  // body -> delivery counts.
  std::map<std::string, std::vector<uint32_t>> Remaining(const std::string& group,
                                                         const std::string& topic, size_t n) {
    std::mutex mu;
    std::map<std::string, std::vector<uint32_t>> got;
    size_t total = 0;
    Consumer c(Options(group));
    EXPECT_TRUE(c.Subscribe(topic, [&](const Received& m) {
                   std::lock_guard<std::mutex> lock(mu);
                   got[m.body].push_back(m.delivery_count);
                   ++total;
                   return ConsumeResult::Success();
                 }).ok());
    EXPECT_TRUE(c.Start().ok());
    EXPECT_TRUE(WaitFor(
        [&] {
          std::lock_guard<std::mutex> lock(mu);
          return total >= n;
        },
        20s));
    std::this_thread::sleep_for(300ms);  // would more than expected come?
    c.Shutdown();
    return got;
  }

  TempDir dir_;
  BrokerOptions options_;
  std::unique_ptr<Broker> broker_;
};

TEST_F(ConsumerShutdown, FromAnotherThreadWaitsForRunningHandlersAndGivesBackTheRest) {
  SendN("jobs", 20);
  Gate gate;
  std::atomic<int> finished{0};
  auto options = Options("workers");
  options.handler_threads = 2;
  Consumer c(options);
  ASSERT_TRUE(c.Subscribe("jobs", [&](const Received&) {
                 gate.Pass();
                 ++finished;
                 return ConsumeResult::Success();
               }).ok());
  ASSERT_TRUE(c.Start().ok());
  ASSERT_TRUE(WaitFor([&] { return gate.waiting() == 2; }));
  std::atomic<bool> returned{false};
  std::thread stopper([&] {
    c.Shutdown();
    returned = true;
  });
  std::this_thread::sleep_for(200ms);
  EXPECT_FALSE(returned) << "Shutdown returned while handlers still ran";
  gate.Open();
  stopper.join();
  EXPECT_EQ(finished, 2);
  EXPECT_EQ(c.stats().ack_errors, 0u);
  auto rest = Remaining("workers", "jobs", 18);
  EXPECT_EQ(rest.size(), 18u) << "the two handled ones were acknowledged";
  for (const auto& [body, counts] : rest) {
    EXPECT_EQ(counts, std::vector<uint32_t>{1}) << body << ": given back, not failed";
  }
}

TEST_F(ConsumerShutdown, SecondCallWaitsForTheFirstToFinish) {
  SendN("jobs", 3);
  Gate gate;
  auto options = Options("workers");
  options.handler_threads = 1;
  Consumer c(options);
  ASSERT_TRUE(c.Subscribe("jobs", [&](const Received&) {
                 gate.Pass();
                 return ConsumeResult::Success();
               }).ok());
  ASSERT_TRUE(c.Start().ok());
  ASSERT_TRUE(WaitFor([&] { return gate.waiting() == 1; }));
  std::atomic<int> returned{0};
  std::thread first([&] {
    c.Shutdown();
    ++returned;
  });
  std::thread second([&] {
    c.Shutdown();
    ++returned;
  });
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(returned, 0) << "a Shutdown returned while a handler still ran";
  gate.Open();
  first.join();
  second.join();
  EXPECT_EQ(returned, 2);
}

TEST_F(ConsumerShutdown, FromAHandlerStopsTheConsumerWithoutDeadlock) {
  SendN("jobs", 10);
  std::atomic<int> handled{0};
  {
    auto options = Options("workers");
    options.handler_threads = 1;
    Consumer c(options);
    ASSERT_TRUE(c.Subscribe("jobs", [&](const Received&) {
                   if (++handled == 3) c.Shutdown();  // e.g. "stop after three"
                   return ConsumeResult::Success();
                 }).ok());
    ASSERT_TRUE(c.Start().ok());
    ASSERT_TRUE(WaitFor([&] { return handled >= 3; }));
    EXPECT_FALSE(c.Start().ok()) << "stopped for good";
  }  // the destructor waits for the stop the handler started
  EXPECT_EQ(handled, 3);
  auto rest = Remaining("workers", "jobs", 7);
  EXPECT_EQ(rest.size(), 7u);
  for (const auto& [body, counts] : rest) EXPECT_EQ(counts, std::vector<uint32_t>{1}) << body;
}

TEST_F(ConsumerShutdown, WhileAPullIsParkedReturnsPromptly) {
  auto options = Options("idle");
  options.long_poll = 20s;
  Consumer c(options);
  ASSERT_TRUE(c.Subscribe("quiet", [](const Received&) { return ConsumeResult::Success(); }).ok());
  ASSERT_TRUE(c.Start().ok());
  std::this_thread::sleep_for(300ms);  // the pull is parked at the broker by now
  const SteadyTime start = SteadyClock::now();
  c.Shutdown();
  EXPECT_LT(SteadyClock::now() - start, 5s) << "goodbye answers the parked pull";
}

TEST_F(ConsumerShutdown, WhileAcksAreUnansweredEndsInTimeAndLosesNothing) {
  SendN("jobs", 3);
  const std::string endpoint = broker_->endpoint();
  Gate gate;
  std::atomic<int> handled{0};
  auto options = Options("workers");
  options.handler_threads = 3;
  Consumer c(options);
  ASSERT_TRUE(c.Subscribe("jobs", [&](const Received&) {
                 gate.Pass();
                 ++handled;
                 return ConsumeResult::Success();
               }).ok());
  ASSERT_TRUE(c.Start().ok());
  ASSERT_TRUE(WaitFor([&] { return gate.waiting() == 3; }));
  broker_->Stop();  // the acks go nowhere
  gate.Open();
  ASSERT_TRUE(WaitFor([&] { return handled == 3; }));
  const SteadyTime start = SteadyClock::now();
  c.Shutdown();
  EXPECT_LT(SteadyClock::now() - start, 15s);
  EXPECT_EQ(c.stats().ack_errors, 3u) << "each unanswered ack ends with an error";

  options_.listen = endpoint;  // same port: clients find it again
  broker_ = StartBroker(options_);
  ASSERT_NE(broker_, nullptr);
  auto again = Remaining("workers", "jobs", 3);
  EXPECT_EQ(again.size(), 3u) << "not acknowledged, so delivered again";
}

// The route thread asks the broker where each topic's queues are (one call
// per topic, each bounded by 5 s). With the broker gone, Shutdown must not
// wait for those calls: it used to, for up to 5 s per topic.
TEST_F(ConsumerShutdown, WhileRouteCallsGoUnansweredReturnsPromptly) {
  Consumer c(Options("router"));
  for (const std::string topic : {"t1", "t2", "t3", "t4"}) {
    ASSERT_TRUE(c.Subscribe(topic, [](const Received&) { return ConsumeResult::Success(); }).ok());
  }
  ASSERT_TRUE(c.Start().ok());
  broker_->Stop();
  std::this_thread::sleep_for(2500ms);  // the next refresh (every 2 s) waits on t1 now
  const SteadyTime start = SteadyClock::now();
  c.Shutdown();
  EXPECT_LT(SteadyClock::now() - start, 4s) << "Shutdown waited for unanswered route calls";
}

TEST_F(ConsumerShutdown, StartAfterShutdownIsRefused) {
  SendN("jobs", 1);
  std::atomic<int> handled{0};
  Consumer c(Options("workers"));
  ASSERT_TRUE(c.Subscribe("jobs", [&](const Received&) {
                 ++handled;
                 return ConsumeResult::Success();
               }).ok());
  c.Shutdown();
  Status s = c.Start();
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition) << s.ToString();
  EXPECT_EQ(c.Subscribe("more", [](const Received&) { return ConsumeResult::Success(); }).code(),
            StatusCode::kFailedPrecondition);
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(handled, 0) << "a consumer that was shut down must not consume";
}

TEST_F(ConsumerShutdown, RacingStartEndsStoppedEitherWay) {
  SendN("jobs", 1);
  for (int i = 0; i < 10; ++i) {
    Consumer c(Options("racers"));
    ASSERT_TRUE(
        c.Subscribe("jobs", [](const Received&) { return ConsumeResult::RetryLater(); }).ok());
    Status started;
    std::thread a([&] { started = c.Start(); });
    std::thread b([&] { c.Shutdown(); });
    a.join();
    b.join();
    // Whichever came first, the consumer is stopped now and stays stopped.
    EXPECT_TRUE(started.ok() || started.code() == StatusCode::kFailedPrecondition)
        << started.ToString();
    EXPECT_EQ(c.Start().code(), StatusCode::kFailedPrecondition);
  }
  auto rest = Remaining("racers", "jobs", 1);
  EXPECT_EQ(rest.size(), 1u);
}

}  // namespace
}  // namespace txmq
