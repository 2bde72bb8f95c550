// Retention through an embedded broker: old messages are deleted, with
// the index entries and retry records that name them, and a queue's
// offsets never start over, also across restarts.
#include <gtest/gtest.h>

#include <set>
#include <thread>

#include "protocol/src/event_fd.h"
#include "protocol/src/util.h"
#include "storage/src/broker_store.h"
#include "tests/integration/messaging_fixture.h"
#include "tests/testutil/admin_client.h"
#include "tests/testutil/testutil.h"
#include "txmq/consumer.h"
#include "txmq/producer.h"

namespace txmq {
namespace {

using namespace std::chrono_literals;
using testing::Messaging;
using testing::Seen;
using testing::StartBroker;
using testing::WaitFor;

// What the data directory's store holds for a topic, read with the broker
// stopped: the queue runs (index) still there, messages still readable,
// and each queue's [first, end).
struct StoredTopic {
  bool exists = false;
  size_t runs = 0;
  size_t readable = 0;
  uint64_t first_sum = 0, end_sum = 0;
  size_t retries = 0;  // retry records of any group that name this topic
};

StoredTopic ReadStoredTopic(const BrokerOptions& o, const std::string& name) {
  storage::StoreOptions so;
  so.dir = o.data_dir;
  so.segment_bytes = o.segment_bytes;
  EventFd done;
  auto store = storage::BrokerStore::Open(so, &done);
  EXPECT_TRUE(store.ok()) << store.status().ToString();
  StoredTopic out;
  if (!store.ok()) return out;
  storage::store::TopicEntry topic;
  EXPECT_TRUE((*store)
                  ->ForEachTopic([&](std::string_view n, const storage::store::TopicEntry& e) {
                    if (n == name) {
                      topic = e;
                      out.exists = true;
                    }
                    return true;
                  })
                  .ok());
  if (!out.exists) return out;
  EXPECT_TRUE(
      (*store)
          ->ForEachRunBefore(UINT64_MAX,
                             [&](uint64_t, uint32_t topic_id, uint32_t, uint64_t, uint64_t) {
                               if (topic_id == topic.id) ++out.runs;
                               return true;
                             })
          .ok());
  for (uint32_t q = 0; q < topic.queues; ++q) {
    const auto bounds = (*store)->GetQueueBounds(topic.id, q);
    out.first_sum += bounds.first;
    out.end_sum += bounds.end;
    for (uint64_t offset = 0; offset < bounds.end; ++offset) {
      if ((*store)->ReadMessage(topic.id, q, offset).ok()) ++out.readable;
    }
  }
  EXPECT_TRUE(
      (*store)
          ->ForEachRetry([&](std::string_view, int64_t, uint64_t, const storage::RetryRecord& r) {
            if (r.topic == name) ++out.retries;
            return true;
          })
          .ok());
  return out;
}

TEST_F(Messaging, RetentionDeletesOldMessagesAndOffsetsNeverRestart) {
  broker_->Stop();
  options_.retention = 3s;
  options_.cleanup_batch = 7;  // several bounded rounds
  broker_ = StartBroker(options_);
  ASSERT_NE(broker_, nullptr);
  testing::AdminClient admin(broker_->endpoint());

  // A group that fails two messages and holds them while retention deletes
  // them: "retry-me" fails once afterwards (a redelivery is due), and
  // "dead-letter-me" fails its last allowed delivery afterwards (it is due
  // for the dead-letter topic). README: a message retention deleted is
  // neither redelivered nor dead-lettered.
  std::atomic<bool> deleted{false};
  std::mutex mu;
  std::map<std::string, int> runs;
  auto count = [&](const std::string& body) {
    std::lock_guard<std::mutex> lock(mu);
    return runs[body];
  };
  ConsumerOptions slow_options = ConsumerOpts("slow");
  slow_options.max_reconsume_times = 1;  // dead-lettered when the 2nd delivery fails
  slow_options.visibility_timeout = 60s;
  Consumer slow(slow_options);
  ASSERT_TRUE(slow.Subscribe("failing",
                             [&](const Received& m) {
                               int run;
                               {
                                 std::lock_guard<std::mutex> lock(mu);
                                 run = ++runs[m.body];
                               }
                               if (m.body == "dead-letter-me" && run == 1)
                                 return ConsumeResult::RetryLater();
                               WaitFor([&] { return deleted.load(); }, 60s);
                               return ConsumeResult::RetryLater();
                             })
                  .ok());
  ASSERT_TRUE(slow.Start().ok());

  std::optional<uint64_t> last_offset;
  {
    Producer p(ProducerOpts());
    ASSERT_TRUE(p.Start().ok());
    ASSERT_TRUE(p.Send({.topic = "failing", .body = "retry-me"}).ok());
    ASSERT_TRUE(p.Send({.topic = "failing", .body = "dead-letter-me"}).ok());
    for (int i = 0; i < 50; ++i) {
      auto r = p.Send({.topic = "short-lived", .key = "one-queue", .body = std::to_string(i)});
      ASSERT_TRUE(r.ok());
      last_offset = r->offset;
    }
  }
  ASSERT_TRUE(WaitFor([&] { return count("retry-me") == 1 && count("dead-letter-me") == 2; }))
      << "the failing messages were not delivered before retention";
  // Retention deletes in bounded batches on its own schedule: wait until the
  // broker reports the topics empty rather than guessing how long that takes.
  ASSERT_TRUE(WaitFor(
      [&] {
        return admin.TopicMessages("short-lived") == 0 && admin.TopicMessages("failing") == 0;
      },
      30s))
      << "retention never emptied the topics";
  deleted = true;
  // Both failures reach the broker (the leases end) and the retry is due
  // 100 ms later: wait until the group holds nothing, leased or retrying.
  auto group_idle = [&] {
    auto shown = admin.Call([](wire::Envelope::Builder e) { e.setGroupShow("slow"); });
    if (!shown.ok()) return false;
    auto g = shown->envelope().getGroupShowOk();
    return slow.stats().retried == 3 && g.getInFlight() == 0 && g.getRetrying() == 0;
  };
  EXPECT_TRUE(WaitFor(group_idle, 20s)) << "the failed messages stayed leased or retrying";
  std::this_thread::sleep_for(500ms);  // several backoffs: a redelivery would show now
  slow.Shutdown();
  EXPECT_EQ(count("retry-me"), 1) << "a deleted message was redelivered";
  EXPECT_EQ(count("dead-letter-me"), 2) << "a deleted message was delivered again";
  EXPECT_EQ(admin.TopicMessages("%DLQ%slow"), -1) << "a deleted message was dead-lettered";

  Seen s;
  Consumer c(ConsumerOpts("late-group"));
  ASSERT_TRUE(c.Subscribe("short-lived", s.Record()).ok());
  ASSERT_TRUE(c.Start().ok());
  std::this_thread::sleep_for(700ms);
  c.Shutdown();
  EXPECT_EQ(s.total(), 0u) << "expired messages are gone";

  // On disk: no index entry of either topic is left, no message of them
  // reads back, every queue starts at its end, and the dropped redelivery
  // left no retry record.
  broker_->Stop();
  broker_.reset();
  for (const std::string topic : {"short-lived", "failing"}) {
    SCOPED_TRACE(topic);
    const StoredTopic stored = ReadStoredTopic(options_, topic);
    ASSERT_TRUE(stored.exists);
    EXPECT_EQ(stored.runs, 0u) << "queue runs are still indexed";
    EXPECT_EQ(stored.readable, 0u) << "deleted messages still read back";
    EXPECT_EQ(stored.first_sum, stored.end_sum) << "queues do not start at their end";
    EXPECT_EQ(stored.retries, 0u) << "a retry record of a deleted message is left";
  }
  EXPECT_EQ(ReadStoredTopic(options_, "short-lived").end_sum, 50u);

  broker_ = StartBroker(options_);
  ASSERT_NE(broker_, nullptr);
  Producer p(ProducerOpts());
  ASSERT_TRUE(p.Start().ok());
  auto r = p.Send({.topic = "short-lived", .key = "one-queue", .body = "new"});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r->offset, *last_offset + 1) << "an emptied queue continues where it was";
}

}  // namespace
}  // namespace txmq
