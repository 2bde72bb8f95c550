// The core thread's placement decisions (broker/src/placement_gate.h)
// against a replicator whose placements the test sets: serve, refuse
// WRONG_GROUP naming the serving group's leader, park until placed, and
// answer parked requests when placing fails or takes too long.
#include "broker/src/placement_gate.h"

#include <gtest/gtest.h>

#include <map>

#include "protocol/src/util.h"

namespace txmq::broker {
namespace {

using namespace std::chrono_literals;
using Kind = PlacementGate::Decision::Kind;

class FakeReplicator final : public RoundReplicator {
 public:
  Status ReplayCommittedRounds(uint64_t, const std::function<Status(std::string_view)>&) override {
    return Status::OK();
  }
  uint64_t Replicate(std::string) override { return 0; }
  uint64_t committed() const override { return 0; }
  Status failure() const override { return Status::OK(); }
  EventFd& event() override { return event_; }
  std::string group() const override { return "g1"; }
  cluster::PlacementLookup LookupPlacement(const std::string& topic,
                                           uint32_t queue_count) override {
    if (auto it = placed.find(topic); it != placed.end()) return {it->second, Status::OK()};
    if (auto it = failing.find(topic); it != failing.end()) return {nullptr, it->second};
    if (queue_count != 0) asked[topic] = queue_count;
    return {nullptr, Status::OK()};
  }
  std::string LeaderUrlOf(const std::string& group) const override {
    return group == "g2" ? "tcp://127.0.0.1:2002" : "";
  }
  uint64_t PlacementVersion() const override { return version; }
  std::optional<std::vector<std::string>> DrainPending(
      const cluster::QueueGeneration& moved) const override {
    auto it = drains.find(moved);
    if (it == drains.end()) return std::nullopt;
    return it->second;
  }

  uint64_t version = 0;
  std::map<cluster::QueueGeneration, std::vector<std::string>> drains;

  std::map<std::string, std::shared_ptr<const cluster::TopicPlacement>> placed;
  std::map<std::string, Status> failing;
  std::map<std::string, uint32_t> asked;  // topics it was asked to place, with their counts

 private:
  EventFd event_;
};

// A key of `topic`'s queue `queue` out of `n`.
std::string KeyOfQueue(uint32_t queue, uint32_t n) {
  for (int i = 0;; ++i) {
    std::string key = "k" + std::to_string(i);
    if (StableHash(key) % n == queue) return key;
  }
}

TEST(PlacementGate, WithoutAClusterEverythingIsServedHere) {
  PlacementGate gate(nullptr);
  EXPECT_FALSE(gate.active());
  EXPECT_EQ(gate.Admit("orders", "k", 0, 4).kind, Kind::kServe);
  EXPECT_FALSE(gate.ServedQueues("orders").has_value());
}

TEST(PlacementGate, ServesItsQueuesAndSendsTheRestToTheirGroup) {
  FakeReplicator r;
  r.placed["orders"] = std::make_shared<cluster::TopicPlacement>(
      cluster::TopicPlacement{.queue_count = 4, .groups = {"g1", "g2", "g1", "g2"}});
  PlacementGate gate(&r);
  EXPECT_EQ(gate.Admit("orders", KeyOfQueue(0, 4), 0, 8).kind, Kind::kServe);
  EXPECT_EQ(gate.Admit("orders", KeyOfQueue(2, 4), 4, 8).kind, Kind::kServe);
  auto other = gate.Admit("orders", KeyOfQueue(3, 4), 4, 8);
  EXPECT_EQ(other.kind, Kind::kRefuse);
  EXPECT_EQ(other.status.code(), StatusCode::kWrongGroup);
  EXPECT_NE(other.status.message().find("queue 3 of topic orders"), std::string::npos);
  EXPECT_NE(other.status.message().find("broker group g2"), std::string::npos);
  EXPECT_EQ(other.leader_url, "tcp://127.0.0.1:2002");
  // Keyless: any group that serves a queue takes it.
  EXPECT_EQ(gate.Admit("orders", "", 4, 8).kind, Kind::kServe);
  auto served = gate.ServedQueues("orders");
  ASSERT_TRUE(served.has_value());
  EXPECT_EQ(served->queue_count, 4u);
  EXPECT_EQ(served->queues, (std::vector<uint32_t>{0, 2}));
  // Keyless where this group serves nothing: the first queue's group.
  r.placed["elsewhere"] = std::make_shared<cluster::TopicPlacement>(
      cluster::TopicPlacement{.queue_count = 2, .groups = {"g2", "g2"}});
  EXPECT_EQ(gate.Admit("elsewhere", "", 0, 4).status.code(), StatusCode::kWrongGroup);
}

TEST(PlacementGate, ATopicWithAnotherQueueCountHereIsRefusedNamingBoth) {
  FakeReplicator r;
  r.placed["orders"] = std::make_shared<cluster::TopicPlacement>(
      cluster::TopicPlacement{.queue_count = 2, .groups = {"g1", "g1"}});
  PlacementGate gate(&r);
  auto d = gate.Admit("orders", "k", 8, 4);
  EXPECT_EQ(d.kind, Kind::kRefuse);
  EXPECT_EQ(d.status.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(d.status.message().find("has 8 queues on this node but is placed with 2"),
            std::string::npos)
      << d.status.message();
}

TEST(PlacementGate, AnUnplacedTopicWaitsAndIsServedOncePlaced) {
  FakeReplicator r;
  PlacementGate gate(&r);
  // A topic new here is placed with the default count, one that exists
  // here with its own.
  EXPECT_EQ(gate.Admit("fresh", "k", 0, 4).kind, Kind::kPark);
  EXPECT_EQ(r.asked["fresh"], 4u);
  EXPECT_EQ(gate.Admit("old", "k", 6, 4).kind, Kind::kPark);
  EXPECT_EQ(r.asked["old"], 6u);

  const SteadyTime t0 = SteadyClock::now();
  std::vector<Status> outcomes;
  gate.Park("fresh", t0, [&](const Status& s) { outcomes.push_back(s); });
  gate.Park("fresh", t0, [&](const Status& s) { outcomes.push_back(s); });
  gate.ResumeParked(t0 + 1s);
  EXPECT_TRUE(outcomes.empty()) << "still being placed";
  r.placed["fresh"] = std::make_shared<cluster::TopicPlacement>(
      cluster::TopicPlacement{.queue_count = 4, .groups = {"g1", "g1", "g1", "g1"}});
  gate.ResumeParked(t0 + 2s);
  ASSERT_EQ(outcomes.size(), 2u);
  EXPECT_TRUE(outcomes[0].ok() && outcomes[1].ok());
  EXPECT_FALSE(gate.has_parked());
}

TEST(PlacementGate, ParkedRequestsHearWhyTheirTopicCouldNotBePlaced) {
  FakeReplicator r;
  PlacementGate gate(&r);
  const SteadyTime t0 = SteadyClock::now();
  std::vector<Status> outcomes;
  gate.Park("slow", t0, [&](const Status& s) { outcomes.push_back(s); });
  gate.Park("broken", t0, [&](const Status& s) { outcomes.push_back(s); });
  r.failing["broken"] = Status::Corruption("/txmq/c/placement/broken: not a record");
  gate.ResumeParked(t0 + 1s);
  ASSERT_EQ(outcomes.size(), 1u);
  EXPECT_EQ(outcomes[0].code(), StatusCode::kUnavailable);
  EXPECT_NE(outcomes[0].message().find("not a record"), std::string::npos);
  gate.ResumeParked(t0 + PlacementGate::kParkLimit + 1ms);
  ASSERT_EQ(outcomes.size(), 2u);
  EXPECT_EQ(outcomes[1].code(), StatusCode::kUnavailable);
  EXPECT_NE(outcomes[1].message().find("topic slow could not be placed within 5 s"),
            std::string::npos)
      << outcomes[1].message();
  // A failure to place, seen by Admit, is refused at once.
  r.failing["broken"] = Status::Unavailable("etcd down");
  auto d = gate.Admit("broken", "k", 0, 4);
  EXPECT_EQ(d.kind, Kind::kRefuse);
  EXPECT_NE(d.status.message().find("etcd down"), std::string::npos);
}

TEST(PlacementGate, AQueueMovedHereWaitsForEachConsumerGroupToDrainTheOldGroup) {
  FakeReplicator r;  // this node is g1's
  auto before = std::make_shared<cluster::TopicPlacement>(
      cluster::TopicPlacement{.queue_count = 2, .groups = {"g2", "g1"}});
  r.placed["orders"] = before;
  PlacementGate gate(&r);
  EXPECT_FALSE(gate.HeldBack("orders", 0, "billing"));
  EXPECT_EQ(gate.ServedQueues("orders")->queues, std::vector<uint32_t>{1});

  // Queue 0 moves from g2 to g1: a new map, a new placement version.
  auto after = std::make_shared<cluster::TopicPlacement>(*before);
  after->groups[0] = "g1";
  after->generation = {1, 0};
  after->drain_from = {"g2", ""};
  r.placed["orders"] = after;
  EXPECT_EQ(gate.ServedQueues("orders")->queues, std::vector<uint32_t>{1}) << "still the old map";
  ++r.version;
  EXPECT_EQ(gate.ServedQueues("orders")->queues, (std::vector<uint32_t>{0, 1}));
  EXPECT_EQ(gate.Admit("orders", KeyOfQueue(0, 2), 2, 8).kind, Kind::kServe);
  // No report from g2 yet: every consumer group waits.
  EXPECT_TRUE(gate.HeldBack("orders", 0, "billing"));
  EXPECT_FALSE(gate.HeldBack("orders", 1, "billing"));
  r.drains[{"orders", 0, 1}] = {"billing"};
  EXPECT_TRUE(gate.HeldBack("orders", 0, "billing"));
  EXPECT_FALSE(gate.HeldBack("orders", 0, "audit")) << "a group g2 owes nothing";
  r.drains[{"orders", 0, 1}] = {};
  EXPECT_FALSE(gate.HeldBack("orders", 0, "billing"));
}

TEST(PlacementGate, AQueueMovedAwayIsRefusedButStillDelivered) {
  FakeReplicator r;
  auto moved = std::make_shared<cluster::TopicPlacement>(
      cluster::TopicPlacement{.queue_count = 2, .groups = {"g2", "g2"}});
  moved->generation = {1, 0};
  moved->drain_from = {"g1", ""};
  r.placed["orders"] = moved;
  PlacementGate gate(&r);
  auto refused = gate.Admit("orders", KeyOfQueue(0, 2), 2, 8);
  EXPECT_EQ(refused.status.code(), StatusCode::kWrongGroup);
  EXPECT_EQ(refused.leader_url, "tcp://127.0.0.1:2002");
  EXPECT_EQ(gate.ServedQueues("orders")->queues, std::vector<uint32_t>{0});
  EXPECT_FALSE(gate.HeldBack("orders", 0, "billing")) << "the old group is never held";
}

}  // namespace
}  // namespace txmq::broker
