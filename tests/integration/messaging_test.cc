// End to end through an embedded broker on a free loopback port: real
// sockets, a real LevelDB in a temp dir, the real client libraries.
// Retention: messaging_retention_test.cc.
#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <mutex>
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
#include "txmq/properties.h"

namespace txmq {
namespace {

using namespace std::chrono_literals;
using testing::Messaging;
using testing::Seen;
using testing::StartBroker;
using testing::TempDir;
using testing::TestBrokerOptions;
using testing::WaitFor;

TEST_F(Messaging, TenThousandMessagesReachEachOfTwoGroups) {
  Seen a, b;
  Consumer ca(ConsumerOpts("group-a")), cb(ConsumerOpts("group-b"));
  ASSERT_TRUE(ca.Subscribe("orders", a.Record()).ok());
  ASSERT_TRUE(cb.Subscribe("orders", b.Record()).ok());
  ASSERT_TRUE(ca.Start().ok());
  ASSERT_TRUE(cb.Start().ok());

  Producer p(ProducerOpts());
  ASSERT_TRUE(p.Start().ok());
  std::set<std::string> sent = SendMany(p, "orders", 10000);
  ASSERT_EQ(sent.size(), 10000u);

  ASSERT_TRUE(WaitFor([&] { return a.distinct() == 10000 && b.distinct() == 10000; }, 60s))
      << a.distinct() << " " << b.distinct();
  ca.Shutdown();
  cb.Shutdown();
  EXPECT_EQ(std::set<std::string>(a.ids.begin(), a.ids.end()), sent);
  EXPECT_EQ(std::set<std::string>(b.ids.begin(), b.ids.end()), sent);
  EXPECT_EQ(a.total(), 10000u) << "no redelivery expected without failures";
}

// Acks that pile up while one ack request is in flight go together in the
// next; each message is still acked, once, and none comes back.
TEST_F(Messaging, ABusyConsumersAcksGoTogetherAndEveryMessageIsAcked) {
  Producer p(ProducerOpts());
  ASSERT_TRUE(p.Start().ok());
  std::set<std::string> sent = SendMany(p, "orders", 3000);
  ASSERT_EQ(sent.size(), 3000u);

  Seen seen;
  ConsumerOptions opts = ConsumerOpts("billing");
  opts.visibility_timeout = 1s;  // an unacked message would come back soon
  {
    Consumer c(opts);
    ASSERT_TRUE(c.Subscribe("orders", seen.Record()).ok());
    ASSERT_TRUE(c.Start().ok());
    ASSERT_TRUE(WaitFor([&] { return seen.distinct() == 3000; }, 60s)) << seen.distinct();
    c.Shutdown();  // waits for the acks in flight and those waiting
    const ConsumerStats stats = c.stats();
    EXPECT_EQ(stats.succeeded, 3000u);
    EXPECT_EQ(stats.ack_errors, 0u);
    EXPECT_GE(stats.ack_requests, 1u);
    EXPECT_LT(stats.ack_requests, stats.succeeded / 2) << "acks were sent one by one";
  }
  // Every ack reached the broker: after the leases would have ended, the
  // group has nothing left.
  std::this_thread::sleep_for(1500ms);
  Seen again;
  Consumer later(opts);
  ASSERT_TRUE(later.Subscribe("orders", again.Record()).ok());
  ASSERT_TRUE(later.Start().ok());
  std::this_thread::sleep_for(1500ms);
  later.Shutdown();
  EXPECT_EQ(again.total(), 0u) << "messages came back: their acks were lost";
  EXPECT_EQ(seen.total(), 3000u);
}

TEST_F(Messaging, PerKeyOrderIsKeptWithinAQueue) {
  Producer p(ProducerOpts());
  ASSERT_TRUE(p.Start().ok());
  for (int i = 0; i < 200; ++i) {
    ASSERT_TRUE(p.Send({.topic = "ordered",
                        .key = "account-" + std::to_string(i % 3),
                        .body = std::to_string(i)})
                    .ok());
  }
  Seen s;
  Consumer c({.broker = broker_->endpoint(),
              .group = "g",
              .handler_threads = 1,
              .max_in_flight = 1,
              .long_poll = 500ms});
  ASSERT_TRUE(c.Subscribe("ordered", s.Record()).ok());
  ASSERT_TRUE(c.Start().ok());
  ASSERT_TRUE(WaitFor([&] { return s.total() == 200; }));
  c.Shutdown();
  std::map<std::string, int> last;
  std::map<std::string, uint32_t> queue_of;
  for (const Received& m : s.messages) {
    int n = std::stoi(m.body);
    if (last.count(m.key)) {
      EXPECT_LT(last[m.key], n) << "key " << m.key << " out of order";
    }
    last[m.key] = n;
    if (queue_of.count(m.key)) {
      EXPECT_EQ(queue_of[m.key], m.queue) << "a key changed queue";
    }
    queue_of[m.key] = m.queue;
  }
}

TEST_F(Messaging, TwoConsumersOfOneGroupShareTheWork) {
  Seen a, b;
  auto slow = [](Seen& s) {
    Handler record = s.Record();
    return [record](const Received& m) {
      std::this_thread::sleep_for(1ms);  // so neither drains everything alone
      return record(m);
    };
  };
  Consumer ca(ConsumerOpts("shared")), cb(ConsumerOpts("shared"));
  ASSERT_TRUE(ca.Subscribe("work", slow(a)).ok());
  ASSERT_TRUE(cb.Subscribe("work", slow(b)).ok());
  ASSERT_TRUE(ca.Start().ok());
  ASSERT_TRUE(cb.Start().ok());
  Producer p(ProducerOpts());
  ASSERT_TRUE(p.Start().ok());
  std::set<std::string> sent = SendMany(p, "work", 2000);
  ASSERT_TRUE(WaitFor([&] { return a.distinct() + b.distinct() >= 2000; }, 60s));
  ca.Shutdown();
  cb.Shutdown();
  std::set<std::string> all(a.ids.begin(), a.ids.end());
  all.insert(b.ids.begin(), b.ids.end());
  EXPECT_EQ(all, sent);
  EXPECT_GT(a.total(), 100u);
  EXPECT_GT(b.total(), 100u);
  EXPECT_EQ(a.total() + b.total(), 2000u) << "each message handled by one consumer only";
}

TEST_F(Messaging, RetriedSendWithTheSameIdIsStoredOnce) {
  Producer p(ProducerOpts());
  ASSERT_TRUE(p.Start().ok());
  Message m{.topic = "dedup", .body = "once", .id = "order-42-created"};
  auto first = p.Send(m);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_FALSE(first->duplicate);
  // Several resends, some concurrent with each other.
  std::vector<std::future<Result<SendResult>>> again;
  for (int i = 0; i < 5; ++i) again.push_back(p.SendAsync(m));
  for (auto& f : again) {
    auto r = f.get();
    ASSERT_TRUE(r.ok());
    EXPECT_TRUE(r->duplicate);
    EXPECT_EQ(r->queue, first->queue);
    EXPECT_EQ(r->offset, first->offset);
  }
  // Two identical sends racing while neither is durable yet.
  Message racing{.topic = "dedup", .body = "race", .id = "race-1"};
  auto f1 = p.SendAsync(racing), f2 = p.SendAsync(racing);
  auto r1 = f1.get(), r2 = f2.get();
  ASSERT_TRUE(r1.ok() && r2.ok());
  EXPECT_NE(r1->duplicate, r2->duplicate);
  EXPECT_EQ(r1->offset, r2->offset);

  Seen s;
  Consumer c(ConsumerOpts("g"));
  ASSERT_TRUE(c.Subscribe("dedup", s.Record()).ok());
  ASSERT_TRUE(c.Start().ok());
  ASSERT_TRUE(WaitFor([&] { return s.total() >= 2; }));
  std::this_thread::sleep_for(300ms);  // would a copy still arrive?
  c.Shutdown();
  EXPECT_EQ(s.total(), 2u);
}

TEST_F(Messaging, DedupWindowSurvivesRestart) {
  Message m{.topic = "dedup", .body = "x", .id = "survives-restart"};
  {
    Producer p(ProducerOpts());
    ASSERT_TRUE(p.Start().ok());
    ASSERT_FALSE(p.Send(m)->duplicate);
  }
  broker_->Stop();
  broker_.reset();
  options_.listen = "tcp://127.0.0.1:*";
  broker_ = StartBroker(options_);
  ASSERT_NE(broker_, nullptr);
  Producer p(ProducerOpts());
  ASSERT_TRUE(p.Start().ok());
  auto r = p.Send(m);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->duplicate);
}

TEST_F(Messaging, FailedHandlerIsRetriedWithBackoffThenDeadLettered) {
  Producer p(ProducerOpts());
  ASSERT_TRUE(p.Start().ok());
  auto sent = p.Send({.topic = "fragile", .body = "poison"});
  ASSERT_TRUE(sent.ok());

  std::mutex mu;
  std::vector<std::pair<uint32_t, SteadyTime>> attempts;
  auto opts = ConsumerOpts("fragile-group");
  opts.max_reconsume_times = 2;  // 1 delivery + 2 redeliveries, then the DLQ
  Consumer c(opts);
  ASSERT_TRUE(c.Subscribe("fragile", [&](const Received& m) {
                 std::lock_guard<std::mutex> lock(mu);
                 attempts.emplace_back(m.delivery_count, SteadyClock::now());
                 if (attempts.size() == 2) throw std::runtime_error("handler blew up");
                 return ConsumeResult::RetryLater();
               }).ok());
  Seen dlq;
  ASSERT_TRUE(c.Subscribe("%DLQ%fragile-group", dlq.Record()).ok());
  ASSERT_TRUE(c.Start().ok());
  ASSERT_TRUE(WaitFor([&] { return dlq.total() == 1; }, 15s));
  std::this_thread::sleep_for(500ms);
  c.Shutdown();

  std::lock_guard<std::mutex> lock(mu);
  ASSERT_EQ(attempts.size(), 3u);
  for (uint32_t i = 0; i < 3; ++i) EXPECT_EQ(attempts[i].first, i + 1) << "delivery count";
  // Backoff levels in the test broker: 100 ms, then 200 ms.
  EXPECT_GE(attempts[1].second - attempts[0].second, 90ms);
  EXPECT_GE(attempts[2].second - attempts[1].second, 190ms);
  const Received& dead = dlq.messages.at(0);
  EXPECT_EQ(dead.id, sent->message_id);
  EXPECT_EQ(dead.body, "poison");
  EXPECT_EQ(dead.properties.at(property::kDeadLetterTopic), "fragile");
  EXPECT_EQ(dead.properties.at(property::kDeadLetterDeliveries), "3");
  EXPECT_EQ(dead.properties.at(property::kDeadLetterGroup), "fragile-group");
}

TEST_F(Messaging, ExpiredLeaseIsRedeliveredWithAHigherCount) {
  Producer p(ProducerOpts());
  ASSERT_TRUE(p.Start().ok());
  ASSERT_TRUE(p.Send({.topic = "slow", .body = "x"}).ok());
  std::atomic<int> calls{0};
  std::atomic<uint32_t> last_count{0};
  auto opts = ConsumerOpts("g");
  opts.visibility_timeout = 300ms;
  Consumer c(opts);
  ASSERT_TRUE(c.Subscribe("slow", [&](const Received& m) {
                 last_count = m.delivery_count;
                 if (calls++ == 0) std::this_thread::sleep_for(1s);  // outlives its lease
                 return ConsumeResult::Success();
               }).ok());
  ASSERT_TRUE(c.Start().ok());
  ASSERT_TRUE(WaitFor([&] { return calls >= 2; }));
  c.Shutdown();
  EXPECT_EQ(last_count, 2u);
}

TEST_F(Messaging, LongPollAnswersAsSoonAsAMessageArrives) {
  Seen s;
  Consumer c({.broker = broker_->endpoint(), .group = "g", .long_poll = 20s});
  ASSERT_TRUE(c.Subscribe("later", s.Record()).ok());
  ASSERT_TRUE(c.Start().ok());
  std::this_thread::sleep_for(300ms);  // the pull is parked at the broker now
  Producer p(ProducerOpts());
  ASSERT_TRUE(p.Start().ok());
  auto sent_at = SteadyClock::now();
  ASSERT_TRUE(p.Send({.topic = "later", .body = "x"}).ok());
  ASSERT_TRUE(WaitFor([&] { return s.total() == 1; }, 15s));
  // Well inside the 20 s the pull was willing to wait.
  EXPECT_LT(SteadyClock::now() - sent_at, 5s);
  c.Shutdown();
}

TEST_F(Messaging, DelayedMessageIsHiddenUntilDue) {
  Producer p(ProducerOpts());
  ASSERT_TRUE(p.Start().ok());
  // The broker counts the delay from when the send arrives, before the reply.
  auto sent_at = SteadyClock::now();
  auto r = p.Send({.topic = "timers", .body = "later", .delay = 800ms});
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->offset.has_value());
  Seen s;
  SteadyTime got_at;
  Consumer c(ConsumerOpts("g"));
  ASSERT_TRUE(c.Subscribe("timers", [&](const Received& m) {
                 got_at = SteadyClock::now();
                 return s.Record()(m);
               }).ok());
  ASSERT_TRUE(c.Start().ok());
  ASSERT_TRUE(WaitFor([&] { return s.total() == 1; }));
  c.Shutdown();
  EXPECT_GE(got_at - sent_at, 700ms);
}

TEST_F(Messaging, ShutdownGivesBackUnstartedMessagesWithoutCountingThem) {
  Producer p(ProducerOpts());
  ASSERT_TRUE(p.Start().ok());
  SendMany(p, "backlog", 50);
  std::atomic<int> handled{0};
  {
    Consumer c({.broker = broker_->endpoint(),
                .group = "g",
                .handler_threads = 1,
                .max_in_flight = 50,
                .long_poll = 500ms});
    ASSERT_TRUE(c.Subscribe("backlog", [&](const Received&) {
                   ++handled;
                   std::this_thread::sleep_for(50ms);
                   return ConsumeResult::Success();
                 }).ok());
    ASSERT_TRUE(c.Start().ok());
    ASSERT_TRUE(WaitFor([&] { return handled >= 2; }));
    c.Shutdown();
  }
  int first_run = handled;
  Seen s;
  Consumer c2(ConsumerOpts("g"));
  ASSERT_TRUE(c2.Subscribe("backlog", s.Record()).ok());
  ASSERT_TRUE(c2.Start().ok());
  ASSERT_TRUE(WaitFor([&] { return static_cast<int>(s.total()) >= 50 - first_run; }));
  c2.Shutdown();
  EXPECT_EQ(static_cast<int>(s.total()), 50 - first_run);
  for (const Received& m : s.messages) EXPECT_EQ(m.delivery_count, 1u) << "given back, not failed";
}

TEST_F(Messaging, UnknownTopicIsRefusedWhenAutoCreateIsOff) {
  broker_->Stop();
  options_.auto_create_topics = false;
  broker_ = StartBroker(options_);
  ASSERT_NE(broker_, nullptr);
  Producer p(ProducerOpts());
  ASSERT_TRUE(p.Start().ok());
  auto r = p.Send({.topic = "nope", .body = "x"});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
  EXPECT_NE(r.status().message().find("'nope'"), std::string::npos);
}

TEST_F(Messaging, OversizedMessageIsRefusedWithItsSize) {
  Producer p(ProducerOpts());
  ASSERT_TRUE(p.Start().ok());
  auto r = p.Send({.topic = "big", .body = std::string(options_.max_message_bytes + 1, 'x')});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kTooLarge);
  EXPECT_NE(r.status().message().find(std::to_string(options_.max_message_bytes + 1)),
            std::string::npos);
  EXPECT_TRUE(p.Send({.topic = "big", .body = std::string(100000, 'x')}).ok());
}

TEST_F(Messaging, ReservedPropertiesAreRefusedExceptTheCompensationAddress) {
  Producer p(ProducerOpts());
  ASSERT_TRUE(p.Start().ok());
  auto forged =
      p.Send({.topic = "t", .body = "x", .properties = {{property::kTransactionId, "t"}}});
  EXPECT_EQ(forged.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(forged.status().message().find("'txmq.tx' is reserved"), std::string::npos)
      << forged.status().message();
  auto bad_address =
      p.Send({.topic = "t", .body = "x", .properties = {{property::kCompensateTo, "no spaces"}}});
  EXPECT_EQ(bad_address.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(bad_address.status().message().find("'no spaces'"), std::string::npos)
      << bad_address.status().message();
  auto r = p.Send(
      {.topic = "t", .body = "x", .properties = {{property::kCompensateTo, "payment-failures"}}});
  EXPECT_TRUE(r.ok()) << r.status().ToString();
}

TEST_F(Messaging, TheUserBytesOfAMessageAreWhatCountsAgainstTheLimit) {
  // body + key + properties not starting with "txmq.": exactly the limit
  // is fine, one byte more is not, and a compensation address on top does
  // not count.
  Producer p(ProducerOpts());
  ASSERT_TRUE(p.Start().ok());
  const size_t limit = options_.max_message_bytes;
  Message m{.topic = "exact", .key = "k", .properties = {{"user", "12345"}}};
  m.body = std::string(limit - 1 - 4 - 5, 'x');
  m.properties[property::kCompensateTo] = "payment-failures";
  EXPECT_TRUE(p.Send(m).ok());
  m.id.clear();
  m.properties["user"] = "123456";
  auto over = p.Send(m);
  EXPECT_EQ(over.status().code(), StatusCode::kTooLarge);
  EXPECT_NE(over.status().message().find(std::to_string(limit + 1)), std::string::npos)
      << over.status().message();
}

TEST_F(Messaging, StateSurvivesACleanRestart) {
  std::set<std::string> sent, first_run;
  {
    Producer p(ProducerOpts());
    ASSERT_TRUE(p.Start().ok());
    sent = SendMany(p, "durable", 100);
    Seen s;
    Consumer c({.broker = broker_->endpoint(),
                .group = "g",
                .handler_threads = 1,
                .max_in_flight = 10,
                .pull_batch = 10,
                .long_poll = 500ms});
    Handler record = s.Record();
    ASSERT_TRUE(c.Subscribe("durable", [&](const Received& m) {
                   std::this_thread::sleep_for(5ms);
                   return record(m);
                 }).ok());
    ASSERT_TRUE(c.Start().ok());
    ASSERT_TRUE(WaitFor([&] { return s.total() >= 40; }));
    c.Shutdown();  // acknowledges what it handled
    first_run.insert(s.ids.begin(), s.ids.end());
  }
  ASSERT_LT(first_run.size(), 100u);
  broker_->Stop();
  broker_ = StartBroker(options_);
  ASSERT_NE(broker_, nullptr);
  Producer p(ProducerOpts());
  ASSERT_TRUE(p.Start().ok());
  auto more = p.Send({.topic = "durable", .key = "k0", .body = "after restart"});
  ASSERT_TRUE(more.ok());
  EXPECT_GT(*more->offset, 0u) << "offsets continue, never reused";
  sent.insert(more->message_id);

  const size_t expected = sent.size() - first_run.size();
  Seen s;
  Consumer c(ConsumerOpts("g"));
  ASSERT_TRUE(c.Subscribe("durable", s.Record()).ok());
  ASSERT_TRUE(c.Start().ok());
  ASSERT_TRUE(WaitFor([&] { return s.total() >= expected; }));
  std::this_thread::sleep_for(300ms);  // would anything finished before come back?
  c.Shutdown();
  EXPECT_EQ(s.total(), expected);
  std::set<std::string> all = first_run;
  all.insert(s.ids.begin(), s.ids.end());
  EXPECT_EQ(all, sent);
}

TEST_F(Messaging, FlowControlBoundsMessagesHeldByAConsumer) {
  Producer p(ProducerOpts());
  ASSERT_TRUE(p.Start().ok());
  SendMany(p, "bounded", 40);
  std::mutex mu;
  int running = 0, most = 0;
  std::atomic<int> done{0};
  Consumer c({.broker = broker_->endpoint(),
              .group = "g",
              .handler_threads = 8,
              .max_in_flight = 3,
              .long_poll = 500ms});
  ASSERT_TRUE(c.Subscribe("bounded", [&](const Received&) {
                 {
                   std::lock_guard<std::mutex> lock(mu);
                   most = std::max(most, ++running);
                 }
                 std::this_thread::sleep_for(20ms);
                 {
                   std::lock_guard<std::mutex> lock(mu);
                   --running;
                 }
                 ++done;
                 return ConsumeResult::Success();
               }).ok());
  ASSERT_TRUE(c.Start().ok());
  ASSERT_TRUE(WaitFor([&] { return done == 40; }));
  c.Shutdown();
  EXPECT_LE(most, 3);
  EXPECT_GE(most, 2) << "handlers do run concurrently";
}

TEST_F(Messaging, OneProducerIsSafeToShareBetweenThreads) {
  Producer p(ProducerOpts());
  ASSERT_TRUE(p.Start().ok());
  std::mutex mu;
  std::set<std::string> ids;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 250; ++i) {
        auto r = p.Send({.topic = "shared-producer", .body = std::to_string(t * 1000 + i)});
        ASSERT_TRUE(r.ok()) << r.status().ToString();
        std::lock_guard<std::mutex> lock(mu);
        ids.insert(r->message_id);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ids.size(), 1000u);
}

}  // namespace
}  // namespace txmq
