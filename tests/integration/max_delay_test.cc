// The longest delay a message may ask for (BrokerOptions::max_delay): at
// the limit it is taken and delivered once due, one millisecond more is
// refused naming the limit, for a plain send and a transaction's message.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>

#include "protocol/src/util.h"
#include "tests/testutil/admin_client.h"
#include "tests/testutil/testutil.h"
#include "txmq/consumer.h"
#include "txmq/producer.h"
#include "txmq/transaction_producer.h"

namespace txmq {
namespace {

using namespace std::chrono_literals;
using testing::WaitFor;

TEST(MaxDelay, AtTheLimitIsDeliveredWhenDueAndBeyondItIsRefusedNamingTheLimit) {
  testing::TempDir dir;
  BrokerOptions options = testing::TestBrokerOptions(dir.Sub("data"));
  options.max_delay = 1500ms;
  auto broker = testing::StartBroker(options);
  ASSERT_NE(broker, nullptr);
  Producer p({.broker = broker->endpoint(), .retries = 0});
  ASSERT_TRUE(p.Start().ok());

  auto over = p.Send({.topic = "timers", .body = "too late", .delay = 1501ms});
  ASSERT_FALSE(over.ok()) << "a delay above max_delay was taken";
  EXPECT_EQ(over.status().code(), StatusCode::kInvalidArgument) << over.status().ToString();
  EXPECT_NE(over.status().message().find("delay of 1501 ms must be between 0 and 1.5s"),
            std::string::npos)
      << over.status().ToString();

  TransactionProducer tp({.broker = broker->endpoint(), .group = "orders"},
                         [](const CheckRequest&) { return TxState::kRollback; });
  ASSERT_TRUE(tp.Start().ok());
  bool ran = false;
  auto tx = tp.SendInTransaction({.topic = "timers", .body = "too late", .delay = 1501ms},
                                 [&](const Message&) {
                                   ran = true;
                                   return TxState::kCommit;
                                 });
  EXPECT_EQ(tx.status.code(), StatusCode::kInvalidArgument) << tx.status.ToString();
  EXPECT_NE(tx.status.message().find("1.5s"), std::string::npos) << tx.status.ToString();
  EXPECT_FALSE(ran) << "the local transaction ran although the half was refused";

  const auto sent_at = SteadyClock::now();
  auto at_limit = p.Send({.topic = "timers", .body = "just in time", .delay = 1500ms});
  ASSERT_TRUE(at_limit.ok()) << at_limit.status().ToString();
  std::atomic<int> got{0};
  std::atomic<int64_t> after_ms{0};
  Consumer c({.broker = broker->endpoint(), .group = "g", .long_poll = 200ms});
  ASSERT_TRUE(c.Subscribe("timers", [&](const Received&) {
                 after_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                                SteadyClock::now() - sent_at)
                                .count();
                 ++got;
                 return ConsumeResult::Success();
               }).ok());
  ASSERT_TRUE(c.Start().ok());
  ASSERT_TRUE(WaitFor([&] { return got.load() == 1; }));
  c.Shutdown();
  EXPECT_GE(after_ms.load(), 1400) << "delivered before it was due";
  testing::AdminClient admin(broker->endpoint());
  EXPECT_EQ(admin.TopicMessages("timers"), 1) << "only the one at the limit was stored";
}

}  // namespace
}  // namespace txmq
