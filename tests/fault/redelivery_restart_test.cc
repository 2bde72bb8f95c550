// A message waiting for its redelivery (a retry record) and a message
// waiting for its delay are both only in the broker's store while they
// wait. A real txmqd is stopped (SIGTERM) or killed (SIGKILL) while both
// wait; after the restart each is delivered once, the retry with its
// delivery count carried on, the delayed one not before it is due.
#include <gtest/gtest.h>

#include <chrono>
#include <mutex>
#include <thread>
#include <vector>

#include "tests/testutil/testutil.h"
#include "txmq/consumer.h"
#include "txmq/producer.h"

namespace txmq {
namespace {

using namespace std::chrono_literals;
using testing::BrokerProcess;
using testing::TempDir;
using testing::WaitFor;

struct Delivery {
  std::string id;
  uint32_t delivery_count;
  std::chrono::system_clock::time_point at;
};

// Records every delivery; fails `retry-me` on its first delivery.
class Recorder {
 public:
  txmq::Handler Handler() {
    return [this](const Received& m) {
      std::lock_guard<std::mutex> lock(mu_);
      seen_.push_back({m.id, m.delivery_count, std::chrono::system_clock::now()});
      if (m.id == "retry-me" && m.delivery_count == 1) return ConsumeResult::RetryLater();
      return ConsumeResult::Success();
    };
  }
  std::vector<Delivery> Of(const std::string& id) {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<Delivery> out;
    for (const auto& d : seen_)
      if (d.id == id) out.push_back(d);
    return out;
  }

 private:
  std::mutex mu_;
  std::vector<Delivery> seen_;
};

class RedeliveryRestart : public ::testing::TestWithParam<int> {};

TEST_P(RedeliveryRestart, AWaitingRetryAndAWaitingDelayedMessageAreEachDeliveredOnce) {
  const int signal = GetParam();
  TempDir dir;
  // The retry waits 1.5 s, the delayed message 2.5 s: the broker goes down
  // while both wait.
  BrokerProcess broker(dir.Sub("data"), {"--retry-backoff", "1500ms", "--client-timeout", "2s"});
  ASSERT_TRUE(broker.Start());
  Producer producer({.broker = broker.endpoint()});
  ASSERT_TRUE(producer.Start().ok());
  ASSERT_TRUE(producer.Send({.topic = "work", .body = "fails once", .id = "retry-me"}).ok());
  const auto sent_at = std::chrono::system_clock::now();
  ASSERT_TRUE(
      producer.Send({.topic = "work", .body = "later", .id = "delayed", .delay = 2500ms}).ok());

  Recorder recorder;
  {
    Consumer first({.broker = broker.endpoint(), .group = "g", .long_poll = 200ms});
    ASSERT_TRUE(first.Subscribe("work", recorder.Handler()).ok());
    ASSERT_TRUE(first.Start().ok());
    ASSERT_TRUE(WaitFor([&] { return recorder.Of("retry-me").size() == 1; }));
    first.Shutdown();  // the nack is answered (on disk) before this returns
  }
  ASSERT_EQ(recorder.Of("delayed").size(), 0u) << "delivered before it was due";
  if (signal == SIGKILL) {
    broker.Kill9();
  } else {
    ASSERT_EQ(broker.Stop(signal), 0);
  }
  ASSERT_TRUE(broker.Start());

  Consumer second({.broker = broker.endpoint(), .group = "g", .long_poll = 200ms});
  ASSERT_TRUE(second.Subscribe("work", recorder.Handler()).ok());
  ASSERT_TRUE(second.Start().ok());
  ASSERT_TRUE(WaitFor(
      [&] { return recorder.Of("retry-me").size() >= 2 && recorder.Of("delayed").size() >= 1; },
      20s))
      << "a waiting retry or delayed message was lost in the restart";
  // Anything delivered twice would arrive within a redelivery's backoff.
  std::this_thread::sleep_for(2s);
  second.Shutdown();

  auto retried = recorder.Of("retry-me");
  ASSERT_EQ(retried.size(), 2u) << "the retry record was delivered more than once";
  EXPECT_EQ(retried[1].delivery_count, 2u) << "the delivery count did not survive the restart";
  EXPECT_GE(retried[1].at - retried[0].at, 1400ms) << "redelivered before its backoff";
  auto delayed = recorder.Of("delayed");
  ASSERT_EQ(delayed.size(), 1u) << "the delayed message was delivered more than once";
  EXPECT_EQ(delayed[0].delivery_count, 1u);
  EXPECT_GE(delayed[0].at - sent_at, 2400ms) << "delivered before it was due";
}

INSTANTIATE_TEST_SUITE_P(Signals, RedeliveryRestart, ::testing::Values(SIGTERM, SIGKILL),
                         [](const ::testing::TestParamInfo<int>& p) {
                           return p.param == SIGKILL ? std::string("Kill9") : std::string("Stop");
                         });

}  // namespace
}  // namespace txmq
