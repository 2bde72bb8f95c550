// Operators' lifecycle requests against what the loop has not written yet:
// a dead letter whose round is still open (or in flight) is not visible,
// and a purge or a group delete that counts only what is visible must not
// take it along unnamed.
#include <gtest/gtest.h>

#include "broker/src/topics.h"
#include "tests/unit/broker_harness.h"
#include "txmq/names.h"

namespace txmq::broker {
namespace {

using namespace std::chrono_literals;

constexpr char kGroup[] = "billing";
constexpr char kTopic[] = "orders";

class LifecycleRaces : public ::testing::Test {
 protected:
  LifecycleRaces() : h_(Options()) {}

  static BrokerOptions Options() {
    BrokerOptions o;
    o.default_queues = 1;
    return o;
  }

  // "dead" (when `visible_one`) is a dead letter; "arriving" is
  // dead-lettered by a nack whose round is open: not visible yet.
  void DeadLetter(bool visible_one) {
    if (visible_one) h_.Send(kTopic, "dead");
    h_.Send(kTopic, "arriving");
    const uint32_t n = visible_one ? 2 : 1;
    auto first = h_.Pull("c", kGroup, kTopic, 60'000, 0, n);
    ASSERT_TRUE(first && first->size() == n);
    for (const Pulled& p : *first) ASSERT_EQ(h_.Nack("c", kGroup, p.receipt, 0, 1).requeued, 1u);
    h_.Advance(1s);
    auto again = h_.Pull("c", kGroup, kTopic, 60'000, 0, n);
    ASSERT_TRUE(again && again->size() == n);
    if (visible_one) {
      ASSERT_EQ((*again)[0].id, "dead");
      ASSERT_EQ(h_.Nack("c", kGroup, (*again)[0].receipt, 0, 1).dead, 1u);
    }
    h_.Submit("c", [&](wire::Envelope::Builder e) {
      auto n = e.initNack();
      n.setGroup(kGroup);
      auto r = n.initReceipts(1)[0];
      const TestReceipt& receipt = again->back().receipt;
      r.setTopic(receipt.topic);
      r.setQueue(receipt.queue);
      r.setOffset(receipt.offset);
      r.setRetryId(receipt.retry_id);
      r.setLeaseId(receipt.lease_id);
      n.setMaxReconsumeTimes(1);
    });
  }

  std::vector<std::string> DeadLetters() {
    std::vector<std::string> ids;
    auto got = h_.Pull("ops", "operators", DeadLetterTopic(kGroup), 60'000);
    if (got) {
      for (const Pulled& p : *got) ids.push_back(p.id);
    }
    return ids;
  }

  BrokerHarness h_;
};

TEST_F(LifecycleRaces, APurgeOfEveryVisibleDeadLetterKeepsOneStillArriving) {
  ASSERT_NO_FATAL_FAILURE(DeadLetter(true));
  const uint64_t purge = h_.Submit("ops", [](wire::Envelope::Builder e) {
    auto l = e.initLifecycle();
    l.setOperator("tester");
    auto p = l.initPurgeDlq();
    p.setGroup(kGroup);
    p.initMessageIds(1).set(0, "dead");
  });
  h_.Commit();
  auto reply = h_.link().TakeReply("ops", purge);
  ASSERT_TRUE(reply.has_value());
  ASSERT_TRUE(reply->envelope().isLifecycleOk()) << wire::StatusOf(reply->envelope()).ToString();
  EXPECT_EQ(reply->envelope().getLifecycleOk().getDlqPurged().getRemaining(), 1u)
      << "the dead letter still arriving is not counted as remaining";
  ASSERT_NE(h_.topics().Find(DeadLetterTopic(kGroup)), nullptr)
      << "the dead-letter topic went, with a dead letter nobody purged";
  EXPECT_EQ(DeadLetters(), std::vector<std::string>{"arriving"});
}

TEST_F(LifecycleRaces, AGroupWithADeadLetterStillArrivingIsNotDeletedWithoutForce) {
  ASSERT_NO_FATAL_FAILURE(DeadLetter(false));
  const uint64_t del =
      h_.Submit("ops", [](wire::Envelope::Builder e) { e.initLifecycle().setDeleteGroup(kGroup); });
  h_.Commit();
  auto reply = h_.link().TakeReply("ops", del);
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(wire::StatusOf(reply->envelope()).code(), StatusCode::kFailedPrecondition)
      << "deleted a group whose dead letter was still arriving";
  EXPECT_EQ(DeadLetters(), std::vector<std::string>{"arriving"});
}

}  // namespace
}  // namespace txmq::broker
