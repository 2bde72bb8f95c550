// The group record and broker registration JSON: round trips, and records
// that break the writers' rules are refused rather than trusted.
#include "broker/src/cluster/group_state.h"

#include <gtest/gtest.h>

namespace txmq::cluster {
namespace {

TEST(GroupState, RoundTrips) {
  GroupState s{7, "n2", {"n2", "n1", "n3"}};
  auto back = DecodeGroupState(EncodeGroupState(s));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(*back, s);
}

TEST(GroupState, IgnoresFieldsItDoesNotKnow) {
  auto s = DecodeGroupState(R"({"epoch":2,"leader":"a","isr":["a"],"later":{"x":1}})");
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(*s, (GroupState{2, "a", {"a"}}));
}

TEST(GroupState, RefusesRecordsNoWriterProduces) {
  for (const char* bad : {
           "", "[]", "not json",
           R"({"epoch":0,"leader":"a","isr":["a"]})",      // epochs start at 1
           R"({"epoch":"1","leader":"a","isr":["a"]})",    // epoch not a number
           R"({"epoch":1,"leader":"b","isr":["a"]})",      // leader outside the ISR
           R"({"epoch":1,"leader":"a","isr":["a","a"]})",  // repeated member
           R"({"epoch":1,"leader":"a","isr":["a",""]})",   // empty name
           R"({"epoch":1,"leader":"a"})",                  // no ISR
       }) {
    auto s = DecodeGroupState(bad);
    ASSERT_FALSE(s.ok()) << bad;
    EXPECT_EQ(s.status().code(), StatusCode::kCorruption) << bad;
  }
}

TEST(GroupState, AcceptsARecordWithNoLeader) {
  auto s = DecodeGroupState(R"({"epoch":3,"leader":"","isr":["a","b"]})");
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_TRUE(s->leader.empty());
}

TEST(NodeRegistration, RoundTripsAndRefusesGarbage) {
  NodeRegistration r{"tcp://127.0.0.1:5555", "g1"};
  auto back = DecodeNodeRegistration(EncodeNodeRegistration(r));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(*back, r);
  EXPECT_FALSE(DecodeNodeRegistration(R"({"url":1})").ok());
}

TEST(ClusterKeys, FollowTheDesignLayout) {
  EXPECT_EQ(BrokerKey("c", "n1"), "/txmq/c/brokers/n1");
  EXPECT_EQ(GroupStateKey("c", "g1"), "/txmq/c/groups/g1/state");
}

}  // namespace
}  // namespace txmq::cluster
