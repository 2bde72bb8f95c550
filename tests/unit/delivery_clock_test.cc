// Delivery on a fake clock: when leases end, when failed messages come
// back, when delayed messages appear, when long polls are answered and when
// a message goes to the dead-letter topic, each asserted at the exact
// millisecond (one before: not yet; at it: done). No socket, no sleep.
#include <gtest/gtest.h>

#include "tests/unit/broker_harness.h"
#include "txmq/names.h"
#include "txmq/properties.h"

namespace txmq::broker {
namespace {

using namespace std::chrono_literals;

BrokerOptions DeliveryOptions() {
  BrokerOptions o;
  o.default_queues = 1;
  o.max_message_bytes = 1u << 20;
  o.segment_bytes = 8u << 20;
  o.retry_backoff = {1s, 5s, 10s};
  o.max_reconsume_times = 10;
  o.default_visibility_timeout = 30s;
  o.client_timeout = 10s;
  o.cleanup_interval = 1s;
  return o;
}

constexpr char kGroup[] = "workers";
constexpr char kTopic[] = "orders";

class DeliveryClock : public ::testing::Test {
 protected:
  explicit DeliveryClock(BrokerOptions options = DeliveryOptions()) : h_(options) {}

  // What `client` gets from one pull that does not wait.
  std::vector<Pulled> PullNow(const std::string& client, uint32_t visibility_ms = 60'000) {
    auto got = h_.Pull(client, kGroup, kTopic, visibility_ms);
    EXPECT_TRUE(got.has_value()) << "a pull that does not wait is answered at once";
    return got.value_or(std::vector<Pulled>{});
  }

  // The one retry entry of the group.
  const RetryEntry* OnlyRetry() {
    GroupState* g = h_.groups().Find(kGroup);
    if (g == nullptr || g->retries.size() != 1) return nullptr;
    return &g->retries.begin()->second;
  }

  BrokerHarness h_;
};

TEST_F(DeliveryClock, ALeaseEndsAtItsDeadlineAndTheMessageReturnsAfterTheBackoff) {
  h_.Send(kTopic, "m1");
  auto first = PullNow("c1", 5000);
  ASSERT_EQ(first.size(), 1u);
  EXPECT_EQ(first[0].delivery_count, 1u);
  EXPECT_EQ(h_.delivery().NextWake(), h_.SteadyNow() + 5s) << "the loop wakes for the lease";

  h_.Advance(4999ms);
  EXPECT_TRUE(PullNow("c1").empty()) << "leased for 1 ms more";
  EXPECT_EQ(h_.groups().leases().size(), 1u);

  h_.Advance(1ms);  // the deadline: a failed delivery
  EXPECT_TRUE(h_.groups().leases().empty());
  const RetryEntry* retry = OnlyRetry();
  ASSERT_NE(retry, nullptr);
  EXPECT_EQ(retry->due_ms, h_.NowMs() + 1000) << "backoff of the first failure";
  EXPECT_EQ(retry->record.delivery_count, 1u);
  EXPECT_EQ(h_.Ack("c1", kGroup, first[0].receipt), std::make_pair(0u, 1u))
      << "an ack after the deadline ends nothing";

  // c1 leaves (it vanished): c2, alone now, owns the queue.
  h_.delivery().ReleaseClient("c1", "c1", /*failed=*/true);
  h_.Advance(999ms);
  EXPECT_TRUE(PullNow("c2").empty()) << "due in 1 ms";
  h_.Advance(1ms);
  auto again = PullNow("c2");
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].id, "m1");
  EXPECT_EQ(again[0].delivery_count, 2u);
  EXPECT_NE(again[0].receipt.retry_id, 0u);
  EXPECT_EQ(h_.Ack("c2", kGroup, again[0].receipt), std::make_pair(1u, 0u));
  EXPECT_EQ(OnlyRetry(), nullptr);
  h_.Advance(1h);
  EXPECT_TRUE(PullNow("c2").empty()) << "acknowledged: never again";
}

TEST_F(DeliveryClock, ExtendingALeaseMovesItsDeadlineToNowPlusTheVisibility) {
  h_.Send(kTopic, "m1");
  auto got = PullNow("c1", 5000);
  ASSERT_EQ(got.size(), 1u);

  h_.Advance(4000ms);
  LeaseAnswer x = h_.Extend("c1", kGroup, got[0].receipt, 5000);
  EXPECT_EQ(x.state, wire::LeaseState::EXTENDED);
  EXPECT_EQ(x.delivery_count, 1u);
  EXPECT_EQ(x.valid_for_ms, 5000u);
  EXPECT_EQ(h_.Extend("c2", kGroup, got[0].receipt, 5000).state, wire::LeaseState::NOT_HOLDER);

  h_.Advance(4999ms);  // 9 s after the pull: past the first deadline, 1 ms before the new one
  EXPECT_EQ(h_.groups().leases().size(), 1u);
  EXPECT_TRUE(PullNow("c2").empty());

  h_.Advance(1ms);
  EXPECT_TRUE(h_.groups().leases().empty());
  EXPECT_EQ(h_.Extend("c1", kGroup, got[0].receipt, 5000).state, wire::LeaseState::EXPIRED)
      << "a lease that ended cannot be extended";
}

TEST_F(DeliveryClock, AFailedExtensionCountsTheDeliveryAndHoldsThroughTheBackoff) {
  h_.Send(kTopic, "m1");
  auto got = PullNow("c1", 2000);
  ASSERT_EQ(got.size(), 1u);

  LeaseAnswer x = h_.Extend("c1", kGroup, got[0].receipt, 2000, /*failed=*/true);
  EXPECT_EQ(x.state, wire::LeaseState::EXTENDED);
  EXPECT_EQ(x.delivery_count, 2u) << "the next run is the second delivery";
  EXPECT_EQ(x.retry_after_ms, 1000u) << "backoff after one failure";
  EXPECT_EQ(x.valid_for_ms, 3000u) << "backoff + visibility";

  h_.Advance(2999ms);
  EXPECT_EQ(h_.groups().leases().size(), 1u);
  h_.Advance(1ms);  // the holder never came back: a second failure
  const RetryEntry* retry = OnlyRetry();
  ASSERT_NE(retry, nullptr);
  EXPECT_EQ(retry->record.delivery_count, 2u);
  EXPECT_EQ(retry->due_ms, h_.NowMs() + 5000) << "backoff after two failures";
}

TEST_F(DeliveryClock, NackBackoffFollowsTheScheduleAndRepeatsItsLastStep) {
  h_.Send(kTopic, "m1");
  auto got = PullNow("c1");
  ASSERT_EQ(got.size(), 1u);
  Pulled current = got[0];
  const std::vector<std::chrono::milliseconds> waits{1000ms, 5000ms, 10000ms, 10000ms};
  for (size_t i = 0; i < waits.size(); ++i) {
    SCOPED_TRACE("failure " + std::to_string(i + 1));
    EXPECT_EQ(h_.Nack("c1", kGroup, current.receipt).requeued, 1u);
    h_.Advance(waits[i] - 1ms);
    EXPECT_TRUE(PullNow("c1").empty()) << "1 ms before its backoff ends";
    h_.Advance(1ms);
    auto again = PullNow("c1");
    ASSERT_EQ(again.size(), 1u);
    EXPECT_EQ(again[0].delivery_count, i + 2);
    current = again[0];
  }
}

TEST_F(DeliveryClock, ANackWithADelayUsesItInsteadOfTheBackoff) {
  h_.Send(kTopic, "m1");
  auto got = PullNow("c1");
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(h_.Nack("c1", kGroup, got[0].receipt, /*delay_ms=*/250).requeued, 1u);
  h_.Advance(249ms);
  EXPECT_TRUE(PullNow("c1").empty());
  h_.Advance(1ms);
  EXPECT_EQ(PullNow("c1").size(), 1u);
}

TEST_F(DeliveryClock, PastTheRedeliveryLimitTheMessageGoesToTheDeadLetterTopic) {
  h_.Send(kTopic, "m1");
  auto got = PullNow("c1");
  ASSERT_EQ(got.size(), 1u);
  // A limit of 2 redeliveries: deliveries 1 and 2 are retried, the third
  // failure is final.
  EXPECT_EQ(h_.Nack("c1", kGroup, got[0].receipt, 0, /*max_reconsume=*/2).requeued, 1u);
  h_.Advance(1000ms);
  got = PullNow("c1");
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(h_.Nack("c1", kGroup, got[0].receipt, 0, 2).requeued, 1u);
  h_.Advance(5000ms);
  got = PullNow("c1");
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].delivery_count, 3u);
  const int64_t failed_at = h_.NowMs();
  auto last = h_.Nack("c1", kGroup, got[0].receipt, 0, 2);
  EXPECT_EQ(last.dead, 1u);
  EXPECT_EQ(last.requeued, 0u);
  EXPECT_EQ(OnlyRetry(), nullptr);
  EXPECT_EQ(h_.core().counters().dead_lettered, 1u);

  h_.Advance(1h);
  EXPECT_TRUE(PullNow("c1").empty()) << "dead-lettered: not delivered from its topic again";
  auto dead = h_.Pull("ops", "operators", DeadLetterTopic(kGroup), 60'000);
  ASSERT_TRUE(dead.has_value());
  ASSERT_EQ(dead->size(), 1u);
  const Pulled& d = (*dead)[0];
  EXPECT_EQ(d.id, "m1");
  EXPECT_EQ(d.stored_ms, failed_at);
  EXPECT_EQ(d.properties.at(property::kDeadLetterDeliveries), "3");
  EXPECT_EQ(d.properties.at(property::kDeadLetterTopic), kTopic);
  EXPECT_EQ(d.properties.at(property::kDeadLetterGroup), kGroup);
}

// maxReconsumeTimes is one consumer's setting, for the messages it fails:
// a consumer that says 1 must not set the dead-letter threshold of every
// other consumer of its group (issue 10: one nack used to change it for
// the whole group, also for leases that simply expired).
TEST_F(DeliveryClock, ALimitAConsumerAnnouncesAppliesToItsOwnFailuresOnly) {
  // Two topics of the group, one consumer on each: a queue is one
  // consumer's at a time (queue_owners.h), these two read side by side.
  constexpr char kOther[] = "payments";
  h_.Send(kTopic, "strict");
  h_.Send(kOther, "lenient");
  auto strict = h_.Pull("c1", kGroup, kTopic, 60'000, 0, /*max_messages=*/1);
  auto lenient = h_.Pull("c2", kGroup, kOther, 60'000, 0, /*max_messages=*/1);
  ASSERT_TRUE(strict && lenient);
  ASSERT_EQ(strict->size(), 1u);
  ASSERT_EQ(lenient->size(), 1u);
  ASSERT_EQ((*strict)[0].id, "strict");
  // c1 allows one redelivery of what it fails: the second failure is final.
  EXPECT_EQ(h_.Nack("c1", kGroup, (*strict)[0].receipt, 0, /*max_reconsume=*/1).requeued, 1u);
  h_.Advance(1s);
  auto again = h_.Pull("c1", kGroup, kTopic, 60'000, 0, 1);
  ASSERT_TRUE(again && again->size() == 1u);
  ASSERT_EQ((*again)[0].id, "strict");
  EXPECT_EQ(h_.Nack("c1", kGroup, (*again)[0].receipt, 0, 1).dead, 1u);

  // c2 says nothing: the broker's limit (10) applies to its failures, by
  // nack, by failed extension and by an expired lease alike.
  TestReceipt current = (*lenient)[0].receipt;
  for (uint32_t delivery = 1; delivery <= 6; ++delivery) {
    switch (delivery % 3) {
      case 0: {
        const LeaseAnswer x = h_.Extend("c2", kGroup, current, 1000, /*failed=*/true);
        EXPECT_EQ(x.state, wire::LeaseState::EXTENDED) << "delivery " << delivery;
        h_.Advance(std::chrono::milliseconds(x.valid_for_ms));  // then the lease expires
        break;
      }
      case 1:
        EXPECT_EQ(h_.Nack("c2", kGroup, current).requeued, 1u) << "delivery " << delivery;
        break;
      case 2:
        h_.Advance(60s);  // the lease expires
        break;
    }
    EXPECT_EQ(h_.core().counters().dead_lettered, 1u) << "after delivery " << delivery;
    h_.Advance(1h);  // past any backoff
    auto next = h_.Pull("c2", kGroup, kOther, 60'000).value_or(std::vector<Pulled>{});
    ASSERT_EQ(next.size(), 1u) << "delivery " << delivery;
    EXPECT_EQ(next[0].id, "lenient");
    current = next[0].receipt;
  }
}

class DeliveryClockLimitOne : public DeliveryClock {
 protected:
  static BrokerOptions Options() {
    BrokerOptions o = DeliveryOptions();
    o.max_reconsume_times = 1;
    return o;
  }
  DeliveryClockLimitOne() : DeliveryClock(Options()) {}
};

TEST_F(DeliveryClockLimitOne, ExpiredLeasesCountTowardsTheLimit) {
  h_.Send(kTopic, "m1");
  ASSERT_EQ(PullNow("c1", 1000).size(), 1u);
  h_.Advance(1000ms);  // first delivery expires: retried after 1 s
  ASSERT_NE(OnlyRetry(), nullptr);
  h_.Advance(1000ms);
  auto second = PullNow("c1", 1000);
  ASSERT_EQ(second.size(), 1u);
  EXPECT_EQ(second[0].delivery_count, 2u);
  h_.Advance(999ms);
  EXPECT_EQ(h_.core().counters().dead_lettered, 0u);
  h_.Advance(1ms);  // second expiry: past the broker's limit of one redelivery
  EXPECT_EQ(h_.core().counters().dead_lettered, 1u);
  EXPECT_EQ(OnlyRetry(), nullptr);
  auto dead = h_.Pull("ops", "operators", DeadLetterTopic(kGroup), 60'000);
  ASSERT_TRUE(dead.has_value());
  ASSERT_EQ(dead->size(), 1u);
  EXPECT_EQ((*dead)[0].properties.at(property::kDeadLetterDeliveries), "2");
}

TEST_F(DeliveryClock, ADelayedMessageBecomesVisibleAtItsDueTime) {
  const int64_t sent_at = h_.NowMs();
  h_.Send(kTopic, "later", /*delay_ms=*/3000);
  h_.Send(kTopic, "now");
  auto got = PullNow("c1");
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].id, "now");

  h_.Advance(2999ms);
  EXPECT_TRUE(PullNow("c1").empty()) << "due in 1 ms";
  h_.Advance(1ms);
  got = PullNow("c1");
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].id, "later");
  EXPECT_EQ(got[0].stored_ms, sent_at + 3000) << "stored when it became visible";
}

TEST_F(DeliveryClock, ALongPollIsAnsweredByANewMessageOrEmptyAtItsDeadline) {
  EXPECT_FALSE(h_.Pull("c1", kGroup, kTopic, 60'000, /*wait_ms=*/2000).has_value()) << "parked";
  EXPECT_EQ(h_.delivery().NextWake(), h_.SteadyNow() + 2s);
  h_.Advance(1999ms);
  EXPECT_TRUE(h_.TakePulled("c1").empty());
  h_.Advance(1ms);
  auto answers = h_.TakePulled("c1");
  ASSERT_EQ(answers.size(), 1u);
  EXPECT_TRUE(answers[0].empty()) << "the wait is over: an empty answer";

  EXPECT_FALSE(h_.Pull("c1", kGroup, kTopic, 60'000, 2000).has_value());
  h_.Advance(500ms);
  h_.Send(kTopic, "m1");  // durable: the parked pull gets it at once
  answers = h_.TakePulled("c1");
  ASSERT_EQ(answers.size(), 1u);
  ASSERT_EQ(answers[0].size(), 1u);
  EXPECT_EQ(answers[0][0].id, "m1");
}

TEST_F(DeliveryClock, ASilentConsumerLosesItsLeasesAfterTheClientTimeout) {
  h_.Hello("c1", wire::Role::CONSUMER, kGroup);
  EXPECT_TRUE(PullNow("c1").empty());  // nothing yet
  h_.Send(kTopic, "m1");
  ASSERT_EQ(PullNow("c1").size(), 1u);  // last heard now, lease for 60 s

  h_.Advance(10s);  // silent exactly client_timeout: not yet gone
  EXPECT_EQ(h_.groups().leases().size(), 1u);
  h_.Advance(1s);  // the next cleanup pass finds it silent for longer
  EXPECT_TRUE(h_.groups().leases().empty()) << "its lease ended with it";
  const RetryEntry* retry = OnlyRetry();
  ASSERT_NE(retry, nullptr);
  EXPECT_EQ(retry->record.delivery_count, 1u) << "counted as a failed delivery";
  EXPECT_EQ(retry->due_ms, h_.NowMs() + 1000);
}

}  // namespace
}  // namespace txmq::broker
