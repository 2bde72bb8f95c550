// Placements stored in the coordination store (placement_directory.h), on
// the in-memory fake and on a real etcd: one placement per topic however
// many brokers create it at once, stored placements win over proposals,
// and the cluster map joins placements with each group's leader.
//
// Every RealEtcdPlacement test shares one etcd (started by the first,
// stopped after the last); each test uses its own cluster name. Threads:
// the creation race runs short-lived threads that only call the
// coordinator and are joined before anything is checked.
#include "broker/src/cluster/placement_directory.h"

#include <gtest/gtest.h>

#include <memory>
#include <thread>

#include "broker/src/cluster/etcd_coordinator.h"
#include "tests/cluster/etcd_server.h"
#include "tests/testutil/fake_coordinator.h"

namespace txmq::cluster {
namespace {

using testing::EtcdServer;
using testing::FakeCoordinator;

class PlacementDirectory : public ::testing::TestWithParam<std::string> {
 protected:
  static void TearDownTestSuite() { etcd_.reset(); }

  void SetUp() override {
    const std::string name = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    cluster_ = "placement-" + name.substr(0, name.find('/'));
    if (GetParam() == "fake") {
      coordinator_ = std::make_unique<FakeCoordinator>();
      return;
    }
    if (!etcd_) etcd_ = EtcdServer::Start();
    ASSERT_TRUE(etcd_) << "no etcd to test against";
    EtcdOptions options;
    options.endpoints = {etcd_->endpoint()};
    auto c = OpenEtcdCoordinator(options);
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    coordinator_ = std::move(*c);
  }

  Coordinator& c() { return *coordinator_; }

  // A group as its first node leaves it: a state record naming `leader`,
  // and the leader's registration with its client URL.
  void AddGroup(const std::string& group, const std::string& leader, const std::string& url) {
    ASSERT_TRUE(
        c().Put(GroupStateKey(cluster_, group), EncodeGroupState({1, leader, {leader}})).ok());
    ASSERT_TRUE(c().Put(BrokerKey(cluster_, leader), EncodeNodeRegistration({url, group})).ok());
  }

  static inline std::unique_ptr<EtcdServer> etcd_;
  std::unique_ptr<Coordinator> coordinator_;
  std::string cluster_;
};

TEST_P(PlacementDirectory, ATopicIsPlacedOnceOnTheGroupsThatExist) {
  AddGroup("g1", "a1", "tcp://127.0.0.1:1001");
  AddGroup("g2", "b1", "tcp://127.0.0.1:1002");
  // A group's config alone (its first node has not been elected) is not a
  // group to place on yet.
  ASSERT_TRUE(c().Put("/txmq/" + cluster_ + "/groups/g9/config", "{\"segment_bytes\":1}").ok());
  auto groups = ListGroups(c(), cluster_);
  ASSERT_TRUE(groups.ok()) << groups.status().ToString();
  ASSERT_EQ(groups->size(), 2u);
  EXPECT_EQ((*groups)[0].group, "g1");
  EXPECT_EQ((*groups)[1].group, "g2");

  auto placed = EnsurePlacement(c(), cluster_, "orders", 8);
  ASSERT_TRUE(placed.ok()) << placed.status().ToString();
  EXPECT_EQ(*placed, *PlaceQueues("orders", 8, *groups));
  EXPECT_EQ(placed->QueuesOf("g1").size(), 4u);

  // Once stored it is the truth: a group that joins later, or a creator
  // asking for another queue count, gets what is stored.
  AddGroup("g3", "c1", "tcp://127.0.0.1:1003");
  auto again = EnsurePlacement(c(), cluster_, "orders", 16);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, *placed);
  auto fresh = EnsurePlacement(c(), cluster_, "payments", 6);
  ASSERT_TRUE(fresh.ok());
  EXPECT_EQ(fresh->QueuesOf("g3").size(), 2u) << "a new topic uses the group that joined";
}

TEST_P(PlacementDirectory, BrokersCreatingOneTopicAtOnceAgreeOnOnePlacement) {
  AddGroup("g1", "a1", "tcp://127.0.0.1:1001");
  AddGroup("g2", "b1", "tcp://127.0.0.1:1002");
  AddGroup("g3", "c1", "tcp://127.0.0.1:1003");
  // Each asks with another queue count, so two stored placements could not
  // look alike by chance.
  constexpr int kCreators = 4;
  std::vector<Result<TopicPlacement>> results(kCreators, Status::Unavailable("not run"));
  std::vector<std::thread> creators;
  for (int i = 0; i < kCreators; ++i) {
    creators.emplace_back([&, i] {
      results[i] = EnsurePlacement(c(), cluster_, "race", 3 + static_cast<uint32_t>(i));
    });
  }
  for (std::thread& t : creators) t.join();
  for (int i = 0; i < kCreators; ++i) {
    ASSERT_TRUE(results[i].ok()) << results[i].status().ToString();
    EXPECT_EQ(*results[i], *results[0]) << "creator " << i;
  }
  auto read = c().Get(PlacementKey(cluster_, "race"));
  ASSERT_TRUE(read.ok());
  ASSERT_EQ(read->kvs.size(), 1u);
  EXPECT_EQ(read->kvs[0].version, 1) << "written once, never overwritten";
}

TEST_P(PlacementDirectory, NoGroupMeansNoPlacementAndSaysWhy) {
  auto placed = EnsurePlacement(c(), cluster_, "orders", 4);
  EXPECT_EQ(placed.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(placed.status().message().find("no broker group"), std::string::npos);
  EXPECT_NE(placed.status().message().find("orders"), std::string::npos);
  auto read = c().Get(PlacementKey(cluster_, "orders"));
  ASSERT_TRUE(read.ok());
  EXPECT_TRUE(read->kvs.empty());
}

TEST_P(PlacementDirectory, PublishedWeightsAreListedAndShareTheQueues) {
  AddGroup("g1", "a", "tcp://127.0.0.1:7801");
  AddGroup("g2", "b", "tcp://127.0.0.1:7802");
  AddGroup("g3", "c", "tcp://127.0.0.1:7803");
  auto first = PublishGroupWeight(c(), cluster_, "g2", 3);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_EQ(*first, 0u) << "nothing stored before";
  auto again = PublishGroupWeight(c(), cluster_, "g2", 3);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, 3u);
  EXPECT_EQ(PublishGroupWeight(c(), cluster_, "g2", 0).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(PublishGroupWeight(c(), cluster_, "g2", kMaxGroupWeight + 1).status().code(),
            StatusCode::kInvalidArgument);
  // A record no txmq wrote counts as weight 1, and does not stop placing.
  ASSERT_TRUE(c().Put(GroupWeightKey(cluster_, "g3"), "heavy").ok());

  auto groups = ListGroups(c(), cluster_);
  ASSERT_TRUE(groups.ok()) << groups.status().ToString();
  ASSERT_EQ(groups->size(), 3u) << "a weight record is not a group";
  EXPECT_EQ((*groups)[0].group, "g1");
  EXPECT_EQ((*groups)[0].weight, 1u);
  EXPECT_EQ((*groups)[1].weight, 3u);
  EXPECT_EQ((*groups)[2].weight, 1u);

  auto placed = EnsurePlacement(c(), cluster_, "orders", 10);
  ASSERT_TRUE(placed.ok()) << placed.status().ToString();
  EXPECT_EQ(placed->QueuesOf("g2").size(), 6u) << "ceil(10 x 3/5), and every queue is placed";
  EXPECT_EQ(placed->QueuesOf("g1").size() + placed->QueuesOf("g3").size(), 4u);
}

TEST_P(PlacementDirectory, TheMapRoutesEveryQueueToItsGroupsLeader) {
  AddGroup("g1", "a1", "tcp://127.0.0.1:1001");
  AddGroup("g2", "b1", "tcp://127.0.0.1:1002");
  // Followers of g1 (one named after the leader, to show the leader comes
  // first by being the leader, not by name).
  ASSERT_TRUE(
      c().Put(BrokerKey(cluster_, "a0"), EncodeNodeRegistration({"tcp://127.0.0.1:1000", "g1"}))
          .ok());
  ASSERT_TRUE(
      c().Put(BrokerKey(cluster_, "a2"), EncodeNodeRegistration({"tcp://127.0.0.1:1003", "g1"}))
          .ok());
  auto placed = EnsurePlacement(c(), cluster_, "orders", 4);
  ASSERT_TRUE(placed.ok());
  // g2's leader lost its lease: its group stays placed, with no URL (its
  // queues fail until it is back; nothing moves).
  ASSERT_TRUE(c().Delete(BrokerKey(cluster_, "b1")).ok());
  // A record nobody can read spoils only itself.
  ASSERT_TRUE(c().Put(PlacementKey(cluster_, "broken"), "{\"queues\":2}").ok());

  auto map = ReadClusterMap(c(), cluster_);
  ASSERT_TRUE(map.ok()) << map.status().ToString();
  ASSERT_EQ(map->groups.size(), 2u);
  EXPECT_EQ(map->groups.at("g1").leader_url, "tcp://127.0.0.1:1001");
  EXPECT_EQ(map->groups.at("g1").state.epoch, 1);
  EXPECT_EQ(map->groups.at("g2").leader_url, "");
  EXPECT_EQ(map->groups.at("g1").node_urls,
            (std::vector<std::string>{"tcp://127.0.0.1:1001", "tcp://127.0.0.1:1000",
                                      "tcp://127.0.0.1:1003"}));
  EXPECT_TRUE(map->groups.at("g2").node_urls.empty());
  ASSERT_EQ(map->unreadable.size(), 1u);
  EXPECT_NE(map->unreadable[0].find("broken"), std::string::npos);
  ASSERT_EQ(map->topics.count("orders"), 1u);
  for (uint32_t q = 0; q < 4; ++q) {
    auto route = map->Route("orders", q);
    ASSERT_NE(route.group, nullptr);
    EXPECT_EQ(*route.group, placed->groups[q]);
    ASSERT_NE(route.route, nullptr);
    EXPECT_EQ(route.route->leader_url, *route.group == "g1" ? "tcp://127.0.0.1:1001" : "");
  }
  EXPECT_EQ(map->Route("orders", 4).group, nullptr);
  EXPECT_EQ(map->Route("nothing", 0).group, nullptr);

  // A corrupt stored placement is named, never replaced by a fresh one.
  auto broken = EnsurePlacement(c(), cluster_, "broken", 2);
  EXPECT_EQ(broken.status().code(), StatusCode::kCorruption);
  EXPECT_NE(broken.status().message().find(PlacementKey(cluster_, "broken")), std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(Fake, PlacementDirectory, ::testing::Values("fake"));
// A queue moved from a group that is gone for good would wait for its
// drain report forever: an operator releases it. The queue then drains
// from nobody (its generation stays) and can move again.
TEST_P(PlacementDirectory, AReleasedQueueNoLongerWaitsForTheGroupItLeft) {
  AddGroup("g1", "a", "tcp://127.0.0.1:1001");
  AddGroup("g2", "b", "tcp://127.0.0.1:1002");
  auto before = EnsurePlacement(c(), cluster_, "orders", 4);
  ASSERT_TRUE(before.ok());
  const std::string from = before->groups[2];
  const std::string to = from == "g1" ? "g2" : "g1";
  EXPECT_EQ(ReleaseDrain(c(), cluster_, "orders", 2).status().code(),
            StatusCode::kFailedPrecondition)
      << "released a queue that never moved";
  ASSERT_TRUE(MoveQueue(c(), cluster_, "orders", 2, to).ok());

  // Refused while the group it left has a live node (it reports by itself).
  const std::string from_node = from == "g1" ? "a" : "b";
  auto alive = ReleaseDrain(c(), cluster_, "orders", 2);
  EXPECT_EQ(alive.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(
      alive.status().message().find("group " + from + " still has live nodes (" + from_node + ")"),
      std::string::npos)
      << alive.status().ToString();
  auto forced = ReleaseDrain(c(), cluster_, "orders", 2, /*write=*/false, /*force=*/true);
  EXPECT_TRUE(forced.ok()) << forced.status().ToString();
  ASSERT_TRUE(c().Delete(BrokerKey(cluster_, from_node)).ok());  // its lease ran out

  auto dry = ReleaseDrain(c(), cluster_, "orders", 2, /*write=*/false);
  ASSERT_TRUE(dry.ok()) << dry.status().ToString();
  EXPECT_EQ(dry->released_from, from);
  EXPECT_EQ(ReadClusterMap(c(), cluster_)->topics.at("orders").DrainingFrom(2), from)
      << "a dry run wrote";

  const QueueGeneration moved_id{"orders", 2, 1};
  ASSERT_TRUE(c().Put(DrainKey(cluster_, moved_id), EncodeDrainReport({"billing"})).ok());
  auto released = ReleaseDrain(c(), cluster_, "orders", 2);
  ASSERT_TRUE(released.ok()) << released.status().ToString();
  EXPECT_TRUE(c().Get(DrainKey(cluster_, moved_id))->kvs.empty())
      << "the report given up on stayed";
  EXPECT_EQ(released->released_from, from);
  EXPECT_EQ(released->moved, std::vector<uint32_t>{2});
  const TopicPlacement stored = ReadClusterMap(c(), cluster_)->topics.at("orders");
  EXPECT_EQ(stored, released->placement);
  EXPECT_EQ(stored.DrainingFrom(2), "");
  EXPECT_TRUE(stored.QueuesDrainingFrom(from).empty());
  EXPECT_EQ(stored.groups[2], to);
  EXPECT_EQ(stored.GenerationOf(2), 1u);

  // No drain report needed to move it again; released twice is refused.
  EXPECT_EQ(ReleaseDrain(c(), cluster_, "orders", 2).status().code(),
            StatusCode::kFailedPrecondition);
  auto back = MoveQueue(c(), cluster_, "orders", 2, from);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->placement.GenerationOf(2), 2u);
  auto no_queue = ReleaseDrain(c(), cluster_, "orders", 9);
  EXPECT_EQ(no_queue.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(no_queue.status().message().find("has queues 0-3, not 9"), std::string::npos);
  EXPECT_EQ(ReleaseDrain(c(), cluster_, "nothing", 0).status().code(), StatusCode::kNotFound);
}

// A deleted topic's placement goes with its queues' drain reports; the
// name is then placed anew, with another queue count too.
TEST_P(PlacementDirectory, AForgottenPlacementLetsTheNameBePlacedAnew) {
  AddGroup("g1", "a", "tcp://127.0.0.1:1001");
  AddGroup("g2", "b", "tcp://127.0.0.1:1002");
  ASSERT_TRUE(EnsurePlacement(c(), cluster_, "orders", 4).ok());
  auto moved =
      MoveQueue(c(), cluster_, "orders", 1,
                EnsurePlacement(c(), cluster_, "orders", 4)->groups[1] == "g1" ? "g2" : "g1");
  ASSERT_TRUE(moved.ok()) << moved.status().ToString();
  const QueueGeneration report{"orders", 1, 1};
  ASSERT_TRUE(c().Put(DrainKey(cluster_, report), EncodeDrainReport({"billing"})).ok());

  auto dry = ForgetPlacement(c(), cluster_, "orders", /*write=*/false);
  ASSERT_TRUE(dry.ok()) << dry.status().ToString();
  EXPECT_EQ(dry->placement, moved->placement);
  EXPECT_TRUE(ReadClusterMap(c(), cluster_)->topics.contains("orders")) << "a dry run deleted";

  auto forgotten = ForgetPlacement(c(), cluster_, "orders");
  ASSERT_TRUE(forgotten.ok()) << forgotten.status().ToString();
  EXPECT_EQ(forgotten->placement.queue_count, 4u);
  EXPECT_FALSE(ReadClusterMap(c(), cluster_)->topics.contains("orders"));
  EXPECT_TRUE(c().Get(DrainKey(cluster_, report))->kvs.empty()) << "its drain report stayed";
  EXPECT_EQ(ForgetPlacement(c(), cluster_, "orders").status().code(), StatusCode::kNotFound);
  auto again = EnsurePlacement(c(), cluster_, "orders", 2);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(again->queue_count, 2u);
  EXPECT_EQ(again->GenerationOf(1), 0u);
}

TEST_P(PlacementDirectory, AMovedQueueWaitsForItsDrainBeforeItMovesAgain) {
  AddGroup("g1", "a", "tcp://127.0.0.1:1001");
  AddGroup("g2", "b", "tcp://127.0.0.1:1002");
  ASSERT_TRUE(EnsurePlacement(c(), cluster_, "orders", 4).ok());
  auto before = EnsurePlacement(c(), cluster_, "orders", 4);
  ASSERT_TRUE(before.ok());
  const std::string from = before->groups[1];
  const std::string to = from == "g1" ? "g2" : "g1";

  auto moved = MoveQueue(c(), cluster_, "orders", 1, to);
  ASSERT_TRUE(moved.ok()) << moved.status().ToString();
  EXPECT_EQ(moved->placement.groups[1], to);
  EXPECT_EQ(moved->placement.DrainingFrom(1), from);
  EXPECT_EQ(moved->placement.GenerationOf(1), 1u);
  EXPECT_EQ(moved->placement.GenerationOf(0), 0u);
  auto map = ReadClusterMap(c(), cluster_);
  ASSERT_TRUE(map.ok());
  EXPECT_EQ(map->topics.at("orders"), moved->placement);
  EXPECT_EQ(moved->moved, std::vector<uint32_t>{1});

  // Back before the old group reported: refused, naming why.
  auto back = MoveQueue(c(), cluster_, "orders", 1, from);
  EXPECT_EQ(back.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(back.status().message().find("no report"), std::string::npos)
      << back.status().ToString();
  const QueueGeneration id{"orders", 1, 1};
  ASSERT_TRUE(c().Put(DrainKey(cluster_, id), EncodeDrainReport({"billing"})).ok());
  back = MoveQueue(c(), cluster_, "orders", 1, from);
  EXPECT_NE(back.status().message().find("consumer groups billing have not read"),
            std::string::npos)
      << back.status().ToString();
  map = ReadClusterMap(c(), cluster_);
  ASSERT_TRUE(map.ok());
  EXPECT_EQ(map->drains.at(id), std::vector<std::string>{"billing"});
  ASSERT_TRUE(c().Put(DrainKey(cluster_, id), EncodeDrainReport({})).ok());
  back = MoveQueue(c(), cluster_, "orders", 1, from);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->placement.GenerationOf(1), 2u);
  EXPECT_EQ(back->placement.DrainingFrom(1), to);
  // The drained generation's report went with the move.
  EXPECT_TRUE(c().Get(DrainKey(cluster_, id))->kvs.empty());
  EXPECT_EQ(ReadClusterMap(c(), cluster_)->drains.count(id), 0u);

  // Refusals name the bad value.
  EXPECT_EQ(MoveQueue(c(), cluster_, "orders", 1, from).status().code(),
            StatusCode::kFailedPrecondition);  // there already
  auto unknown = MoveQueue(c(), cluster_, "orders", 0, "g9");
  EXPECT_EQ(unknown.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(unknown.status().message().find("no broker group g9"), std::string::npos);
  EXPECT_EQ(MoveQueue(c(), cluster_, "orders", 4, to).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(MoveQueue(c(), cluster_, "nothing", 0, to).status().code(), StatusCode::kNotFound);
}

TEST_P(PlacementDirectory, ARebalanceMovesAJoiningGroupsShareAndWaitsForDrains) {
  AddGroup("g1", "a", "tcp://127.0.0.1:1001");
  ASSERT_TRUE(EnsurePlacement(c(), cluster_, "orders", 8).ok());
  auto alone = RebalanceTopic(c(), cluster_, "orders");
  ASSERT_TRUE(alone.ok()) << alone.status().ToString();
  EXPECT_TRUE(alone->moved.empty()) << "one group: nothing to move";

  AddGroup("g2", "b", "tcp://127.0.0.1:1002");
  auto dry = RebalanceTopic(c(), cluster_, "orders", /*write=*/false);
  ASSERT_TRUE(dry.ok()) << dry.status().ToString();
  auto stored = EnsurePlacement(c(), cluster_, "orders", 8);
  ASSERT_TRUE(stored.ok());
  EXPECT_EQ(stored->QueuesOf("g1").size(), 8u) << "a dry run writes nothing";

  auto moved = RebalanceTopic(c(), cluster_, "orders");
  ASSERT_TRUE(moved.ok()) << moved.status().ToString();
  EXPECT_EQ(moved->moved, dry->moved);
  EXPECT_EQ(moved->moved.size(), 4u) << "g2's share of 8";
  auto proposal = PlaceQueues("orders", 8, {{"g1", 1}, {"g2", 1}});
  ASSERT_TRUE(proposal.ok());
  EXPECT_EQ(moved->placement.groups, proposal->groups);
  for (uint32_t q : moved->moved) {
    EXPECT_EQ(moved->placement.DrainingFrom(q), "g1");
    EXPECT_EQ(moved->placement.GenerationOf(q), 1u);
  }
  auto map = ReadClusterMap(c(), cluster_);
  ASSERT_TRUE(map.ok());
  EXPECT_EQ(map->topics.at("orders"), moved->placement);

  // In balance now: nothing more moves, and no drain is waited for.
  auto again = RebalanceTopic(c(), cluster_, "orders");
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_TRUE(again->moved.empty());
  // A third group: the queues it would take include ones still draining.
  AddGroup("g3", "c", "tcp://127.0.0.1:1003");
  auto third = RebalanceTopic(c(), cluster_, "orders", /*write=*/false);
  bool waits = false;
  for (uint32_t q : moved->moved) {
    auto p = PlaceQueues("orders", 8, {{"g1", 1}, {"g2", 1}, {"g3", 1}});
    waits |= p.ok() && p->groups[q] != "g2";
  }
  if (waits) {
    EXPECT_EQ(third.status().code(), StatusCode::kFailedPrecondition) << third.status().ToString();
    EXPECT_NE(third.status().message().find("still draining from group g1"), std::string::npos);
  } else {
    EXPECT_TRUE(third.ok()) << third.status().ToString();
  }
  EXPECT_EQ(RebalanceTopic(c(), cluster_, "nothing").status().code(), StatusCode::kNotFound);
}

INSTANTIATE_TEST_SUITE_P(RealEtcdPlacement, PlacementDirectory, ::testing::Values("etcd"));

}  // namespace
}  // namespace txmq::cluster
