// The failover test's checker on hand-made histories: each violation it
// exists to find is found, and what is allowed (a redelivery, an unknown
// send stored or not) passes.
#include "tests/cluster/op_history.h"

#include <gtest/gtest.h>

namespace txmq::testing {
namespace {

SendResult At(uint32_t queue, uint64_t offset) {
  SendResult r;
  r.queue = queue;
  r.offset = offset;
  return r;
}

class OpHistoryTest : public ::testing::Test {
 protected:
  // Two acknowledged sends of key k (at 0/10 and 0/11) and one of unknown
  // outcome.
  void SetUp() override {
    auto a = history_.Invoke("k", "t");
    history_.Complete(a.index, At(0, 10));
    auto b = history_.Invoke("k", "t");
    history_.Complete(b.index, At(0, 11));
    auto c = history_.Invoke("k", "t");
    history_.Complete(c.index, Status::Timeout("no reply"));
  }
  HistoryVerdict Check(const std::vector<Delivery>& d) {
    return CheckHistory(history_.Snapshot(), d);
  }
  OpHistory history_;
};

TEST_F(OpHistoryTest, RedeliveriesAndAnUnknownSendStoredPass) {
  auto v = Check(
      {{"t-k-0", "k", 0, 10}, {"t-k-1", "k", 0, 11}, {"t-k-1", "k", 0, 11}, {"t-k-2", "k", 0, 12}});
  EXPECT_EQ(v.ok, 2u);
  EXPECT_EQ(v.unknown, 1u);
  EXPECT_EQ(v.redeliveries, 1u);
  EXPECT_EQ(
      v.lost_acknowledged + v.unexpected + v.stored_twice + v.order_inversions + v.misplaced_acks,
      0u);
}

TEST_F(OpHistoryTest, FindsALostAcknowledgedSend) {
  EXPECT_EQ(Check({{"t-k-0", "k", 0, 10}}).lost_acknowledged, 1u);
}

TEST_F(OpHistoryTest, FindsADeliveryNobodySent) {
  EXPECT_EQ(Check({{"t-k-0", "k", 0, 10}, {"t-k-1", "k", 0, 11}, {"x", "k", 0, 12}}).unexpected,
            1u);
}

TEST_F(OpHistoryTest, FindsAnIdStoredTwice) {
  auto v = Check({{"t-k-0", "k", 0, 10}, {"t-k-1", "k", 0, 11}, {"t-k-1", "k", 0, 12}});
  EXPECT_EQ(v.stored_twice, 1u);
  EXPECT_EQ(v.redeliveries, 0u);
}

TEST_F(OpHistoryTest, FindsAnInversionAndAMisplacedAck) {
  auto v = Check({{"t-k-1", "k", 0, 9}, {"t-k-0", "k", 0, 10}});
  EXPECT_EQ(v.order_inversions, 1u);
  EXPECT_EQ(v.misplaced_acks, 1u);
}

TEST(PercentileTest, NearestRank) {
  EXPECT_EQ(Percentile({}, 99), 0);
  EXPECT_EQ(Percentile({3, 1, 2}, 50), 2);
  EXPECT_EQ(Percentile({3, 1, 2}, 99), 3);
  EXPECT_EQ(Percentile({3, 1, 2}, 0), 1);
}

}  // namespace
}  // namespace txmq::testing
