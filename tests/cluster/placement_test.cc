// Placement of a topic's queues on broker groups (placement.h): stable
// values other implementations can check against, shares that follow the
// weights, little movement when a group joins, and records that refuse a
// wrong shape.
#include "broker/src/cluster/placement.h"

#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

namespace txmq::cluster {
namespace {

std::vector<GroupWeight> Groups(std::initializer_list<std::string> names) {
  std::vector<GroupWeight> out;
  for (const std::string& n : names) out.push_back({n, 1});
  return out;
}

std::map<std::string, int> Count(const TopicPlacement& p) {
  std::map<std::string, int> out;
  for (const std::string& g : p.groups) ++out[g];
  return out;
}

// The hash is part of the format: a client or tool in another language
// proposing a placement must get these very values. Computed by hand from
// the definition (FNV-1a 64 of "orders\0" "3\0" "g1", then fmix64).
TEST(Placement, TheHashIsTheDocumentedOne) {
  uint64_t fnv = 0xcbf29ce484222325ull;
  for (unsigned char c : std::string("orders\0"
                                     "3\0"
                                     "g1",
                                     11)) {
    fnv ^= c;
    fnv *= 0x100000001b3ull;
  }
  uint64_t h = fnv;
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdull;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ull;
  h ^= h >> 33;
  EXPECT_EQ(PlacementHash("orders", 3, "g1"), h);
  EXPECT_NE(PlacementHash("orders", 3, "g1"), PlacementHash("orders", 3, "g2"));
  EXPECT_NE(PlacementHash("orders", 3, "g1"), PlacementHash("orders", 4, "g1"));
  // The separators matter: ("ab", "c") and ("a", "bc") are different inputs.
  EXPECT_NE(PlacementHash("orders1", 3, "g1"), PlacementHash("orders", 13, "g1"));
}

TEST(Placement, IsAFunctionOfItsInputsOnly) {
  auto a = PlaceQueues("orders", 16, Groups({"g1", "g2", "g3"}));
  auto b = PlaceQueues("orders", 16, Groups({"g3", "g1", "g2"}));  // order given does not matter
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(*a, *b);
  EXPECT_EQ(a->queue_count, 16u);
  ASSERT_EQ(a->groups.size(), 16u);
  auto other = PlaceQueues("payments", 16, Groups({"g1", "g2", "g3"}));
  ASSERT_TRUE(other.ok());
  EXPECT_NE(a->groups, other->groups) << "every topic has its own placement";
}

// Bounded load: each group takes at most ceil(queues / groups) of a
// topic's queues, for every topic, where plain rendezvous would often give
// one group most of a small topic.
TEST(Placement, EveryGroupTakesItsShareOfEveryTopic) {
  const auto groups = Groups({"g1", "g2", "g3"});
  for (uint32_t queues : {1u, 2u, 3u, 4u, 8u, 9u, 64u}) {
    for (int t = 0; t < 200; ++t) {
      auto p = PlaceQueues("topic-" + std::to_string(t), queues, groups);
      ASSERT_TRUE(p.ok());
      for (const auto& [group, n] : Count(*p)) {
        EXPECT_LE(n, static_cast<int>((queues + 2) / 3))
            << "topic-" << t << " with " << queues << " queues gives " << group << " " << n;
      }
    }
  }
}

TEST(Placement, WeightsSetTheShares) {
  const std::vector<GroupWeight> groups{{"big", 3}, {"small", 1}};
  auto p = PlaceQueues("orders", 64, groups);
  ASSERT_TRUE(p.ok());
  auto n = Count(*p);
  EXPECT_EQ(n["big"], 48);
  EXPECT_EQ(n["small"], 16);
  EXPECT_EQ(p->QueuesOf("small").size(), 16u);
}

// Over many topics, every group is every queue's first choice about as
// often as the others: nothing in the hash favours a name.
TEST(Placement, NoGroupIsFavoured) {
  const auto groups = Groups({"a", "b", "c", "d"});
  std::map<std::string, int> first;
  for (int t = 0; t < 4000; ++t) {
    auto p = PlaceQueues("t" + std::to_string(t), 1, groups);
    ASSERT_TRUE(p.ok());
    ++first[p->groups[0]];
  }
  for (const auto& [group, n] : first) {
    EXPECT_NEAR(n, 1000, 120) << group;  // 4 standard deviations of a fair draw
  }
}

// A new topic placed after a group joined differs from the old placement
// only in about the queues the new group takes, as rendezvous promises: a
// ring or modulo hashing would move most of them.
TEST(Placement, AGroupJoiningMovesAboutItsShare) {
  int moved = 0;
  int taken_by_new = 0;
  constexpr int kTopics = 100;
  constexpr uint32_t kQueues = 12;
  for (int t = 0; t < kTopics; ++t) {
    const std::string topic = "t" + std::to_string(t);
    auto before = PlaceQueues(topic, kQueues, Groups({"g1", "g2", "g3"}));
    auto after = PlaceQueues(topic, kQueues, Groups({"g1", "g2", "g3", "g4"}));
    ASSERT_TRUE(before.ok() && after.ok());
    for (uint32_t q = 0; q < kQueues; ++q) {
      if (before->groups[q] != after->groups[q]) ++moved;
      if (after->groups[q] == "g4") ++taken_by_new;
    }
  }
  EXPECT_EQ(taken_by_new, kTopics * 3);  // its share: 12 / 4 of every topic
  // Ideal is exactly the new group's share (300); the bounded load moves a
  // few more when a full group hands a queue on.
  EXPECT_LE(moved, taken_by_new * 3 / 2) << "moved " << moved << " of " << kTopics * kQueues;
}

TEST(Placement, BadInputIsNamed) {
  EXPECT_EQ(PlaceQueues("t", 0, Groups({"g1"})).status().code(), StatusCode::kInvalidArgument);
  auto none = PlaceQueues("orders", 4, {});
  EXPECT_EQ(none.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(none.status().message().find("orders"), std::string::npos);
  auto twice = PlaceQueues("t", 4, Groups({"g1", "g1"}));
  EXPECT_NE(twice.status().message().find("g1 named twice"), std::string::npos);
  auto zero = PlaceQueues("t", 4, {{"g1", 0}});
  EXPECT_NE(zero.status().message().find("g1 has weight 0"), std::string::npos);
  EXPECT_FALSE(PlaceQueues("t", 4, {{"", 1}}).ok());
}

TEST(Placement, RecordsRoundTripAndRefuseAnotherShape) {
  auto p = PlaceQueues("orders", 5, Groups({"g1", "g2"}));
  ASSERT_TRUE(p.ok());
  auto back = DecodeTopicPlacement(EncodeTopicPlacement(*p));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(*back, *p);
  // Unknown fields are a later version's: ignored.
  auto later = DecodeTopicPlacement(R"({"queues":1,"groups":["g1"],"weights":[3]})");
  ASSERT_TRUE(later.ok());
  EXPECT_EQ(later->groups, std::vector<std::string>{"g1"});
  for (const char* bad :
       {"", "[]", "{}", R"({"queues":0,"groups":[]})", R"({"queues":2,"groups":["g1"]})",
        R"({"queues":1,"groups":[""]})", R"({"queues":1,"groups":[7]})",
        R"({"queues":-1,"groups":["g"]})", R"({"queues":"1","groups":["g"]})"}) {
    auto d = DecodeTopicPlacement(bad);
    EXPECT_EQ(d.status().code(), StatusCode::kCorruption) << bad;
  }
  EXPECT_EQ(PlacementKey("prod", "orders"), "/txmq/prod/placement/orders");
}

TEST(Placement, AMovedQueueKeepsItsGenerationAndTheGroupItLeft) {
  TopicPlacement p{.queue_count = 2, .groups = {"g2", "g2"}};
  p.generation = {1, 0};
  p.drain_from = {"g1", ""};
  auto back = DecodeTopicPlacement(EncodeTopicPlacement(p));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(*back, p);
  EXPECT_EQ(back->DrainingFrom(0), "g1");
  EXPECT_EQ(back->DrainingFrom(1), "");
  EXPECT_EQ(back->GenerationOf(0), 1u);
  EXPECT_EQ(back->QueuesDrainingFrom("g1"), std::vector<uint32_t>{0});
  EXPECT_TRUE(back->QueuesDrainingFrom("g2").empty());
  // A record from before moves has neither field, and means generation 0.
  auto old = DecodeTopicPlacement(R"({"queues":1,"groups":["g1"]})");
  ASSERT_TRUE(old.ok());
  EXPECT_EQ(old->GenerationOf(0), 0u);
  EXPECT_EQ(EncodeTopicPlacement(*old), R"({"groups":["g1"],"queues":1})");
  for (const char* bad : {R"({"queues":1,"groups":["g1"],"generation":[1]})",
                          R"({"queues":2,"groups":["g1","g2"],"generation":[1],"from":["g1"]})",
                          R"({"queues":1,"groups":["g1"],"generation":[-1],"from":["g2"]})",
                          R"({"queues":1,"groups":["g1"],"generation":[1],"from":[3]})"}) {
    EXPECT_EQ(DecodeTopicPlacement(bad).status().code(), StatusCode::kCorruption) << bad;
  }
}

}  // namespace
}  // namespace txmq::cluster
