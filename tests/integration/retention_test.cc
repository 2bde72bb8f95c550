// Retention on the commit log: expired messages leave their queues at
// once, and whole log segments go once nothing points into them; a
// transaction or a delayed message older than the retention is copied
// forward first and loses nothing.
#include <gtest/gtest.h>

#include <filesystem>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include "tests/testutil/admin_client.h"
#include "tests/testutil/testutil.h"
#include "txmq/consumer.h"
#include "txmq/producer.h"
#include "txmq/transaction_producer.h"

namespace txmq {
namespace {

using namespace std::chrono_literals;
using testing::TempDir;
using testing::WaitFor;

std::set<std::string> Segments(const std::string& data_dir) {
  std::set<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(data_dir + "/log")) {
    names.insert(e.path().filename().string());
  }
  return names;
}

TEST(Retention, WholeSegmentsGoAndOldHalvesAndDelayedMessagesAreCopiedForward) {
  TempDir dir;
  BrokerOptions o = testing::TestBrokerOptions(dir.Sub("data"));
  o.max_message_bytes = 64 * 1024;
  o.segment_bytes = 2 << 20;  // small segments, so a few MiB spans several
  o.retention = 3s;
  o.transaction_timeout = 1h;  // the open transaction is never checked here
  auto broker = testing::StartBroker(o);
  ASSERT_NE(broker, nullptr);
  const std::string endpoint = broker->endpoint();

  // An undecided transaction and a delayed message, both in the first segment.
  TransactionProducer tp({.broker = endpoint, .group = "slow-tx"},
                         [](const CheckRequest&) { return TxState::kUnknown; });
  ASSERT_TRUE(tp.Start().ok());
  auto tx = tp.SendInTransaction({.topic = "kept", .body = "decided late"},
                                 [](const Message&) { return TxState::kUnknown; });
  ASSERT_TRUE(tx.ok()) << tx.status.ToString();
  Producer p({.broker = endpoint});
  ASSERT_TRUE(p.Start().ok());
  auto delayed = p.Send({.topic = "kept", .body = "due later", .delay = 8s});
  ASSERT_TRUE(delayed.ok());

  // Several segments of messages that expire.
  const std::string body(1000, 'x');
  for (int i = 0; i < 6000; ++i) {
    p.SendAsync({.topic = "expiring", .body = body}, [](Result<SendResult>) {});
  }
  ASSERT_TRUE(p.Send({.topic = "expiring", .body = "last"}).ok());
  const auto before = Segments(dir.Sub("data"));
  ASSERT_GE(before.size(), 3u) << "the test needs several segments";

  // The messages expire, and the segments that held them go.
  testing::AdminClient admin(endpoint);
  ASSERT_TRUE(WaitFor([&] { return admin.TopicMessages("expiring") == 0; }, 20s));
  ASSERT_TRUE(WaitFor([&] { return !Segments(dir.Sub("data")).count(*before.begin()); }, 20s))
      << "the oldest segment was never deleted";
  EXPECT_LT(Segments(dir.Sub("data")).size(), before.size());

  // The transaction, whose half sat in a deleted segment, commits whole.
  auto ended = admin.End(tx.transaction_id, /*commit=*/true, "test");
  ASSERT_TRUE(ended.ok()) << ended.status().ToString();
  std::mutex mu;
  std::set<std::string> bodies;
  Consumer c({.broker = endpoint, .group = "reader", .long_poll = 300ms});
  ASSERT_TRUE(c.Subscribe("kept", [&](const Received& m) {
                 std::lock_guard<std::mutex> lock(mu);
                 bodies.insert(m.body);
                 return ConsumeResult::Success();
               }).ok());
  ASSERT_TRUE(c.Start().ok());
  // And the delayed message arrives when due.
  EXPECT_TRUE(WaitFor(
      [&] {
        std::lock_guard<std::mutex> lock(mu);
        return bodies.size() == 2;
      },
      20s));
  c.Shutdown();
  EXPECT_TRUE(bodies.count("decided late"));
  EXPECT_TRUE(bodies.count("due later"));

  // A restart finds the same state (nothing refers to a deleted segment):
  // the queues continue where they were, whether or not retention has
  // meanwhile expired the two messages of "kept" too.
  tp.Shutdown();
  p.Shutdown();
  broker->Stop();
  broker = testing::StartBroker(o);
  ASSERT_NE(broker, nullptr);
  testing::AdminClient again(broker->endpoint());
  EXPECT_EQ(again.TopicMessages("expiring"), 0);
  auto ends = [&](const std::string& topic) {
    auto shown = again.Call([&](wire::Envelope::Builder e) { e.setTopicShow(topic); });
    uint64_t end = 0;
    if (shown.ok()) {
      for (auto q : shown->envelope().getTopicShowOk().getQueues()) end += q.getEndOffset();
    }
    return end;
  };
  EXPECT_EQ(ends("kept"), 2u);
  EXPECT_EQ(ends("expiring"), 6001u);
}

}  // namespace
}  // namespace txmq
