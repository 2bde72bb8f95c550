// txmqctl topic delete in a cluster of two broker groups around one real
// etcd (tools/txmqctl/cluster_topic_delete.cc): each group's part, then
// the topic's placement.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "broker/src/cluster/etcd_coordinator.h"
#include "broker/src/cluster/placement.h"
#include "broker/src/cluster/placement_directory.h"
#include "tests/cluster/two_groups_fixture.h"

namespace txmq::testing {
namespace {

using namespace std::chrono_literals;

class TxmqdTopicDelete : public TwoGroupsFixture {};

// topic delete in a cluster: with --broker-group only that group's part
// goes, and the answer names the groups whose part stays. Without it every
// group's part goes and then the topic's placement, so that the name can
// be created again with another queue count (the stored placement used to
// win). A group that cannot be asked keeps its part, and the placement
// stays while it does.
TEST_F(TxmqdTopicDelete, DeletingATopicDeletesEveryGroupsPartAndThenItsPlacement) {
  StartTwoGroups();
  const std::string topic = TopicPlacedAs("spread-", {"g1", "g2"}, {"g1", "g2"});
  ASSERT_FALSE(topic.empty());
  auto txmqctl = [&](const std::string& url, std::vector<std::string> args) {
    std::vector<std::string> argv = {BinPath("txmqctl"), "--broker", url, "--timeout", "10s"};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunCommand(argv, "", 30s);
  };
  for (const Node& n : nodes_) {  // each group holds its part
    const CommandResult created = txmqctl(n.url(), {"topic", "create", topic, "--queues", "2"});
    ASSERT_EQ(created.exit_code, 0) << created.err;
  }
  // A dry run while every group holds its part says what would go.
  const CommandResult dry_all = txmqctl(nodes_[0].url(), {"topic", "delete", topic, "--dry-run"});
  ASSERT_EQ(dry_all.exit_code, 0) << dry_all.out << dry_all.err;
  EXPECT_TRUE(Has(dry_all.out, "broker group g1: \ntopic")) << dry_all.out;
  EXPECT_TRUE(Has(dry_all.out, "broker group g2: \ntopic")) << dry_all.out;
  EXPECT_TRUE(Has(dry_all.out, "would delete the topic's placement (2 queues)")) << dry_all.out;

  // One group's part, asked of that group.
  const CommandResult one =
      txmqctl(nodes_[0].url(), {"--broker-group", "g1", "--json", "topic", "delete", topic});
  ASSERT_EQ(one.exit_code, 0) << one.err;
  auto j = nlohmann::json::parse(one.out, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << one.out;
  EXPECT_EQ(j["other_groups"], nlohmann::json::array({"g2"})) << one.out;
  EXPECT_EQ(StoredPlacement(topic).queue_count, 2u) << "the placement stays";

  // The whole topic: g2's part and the placement (g1 has none left).
  const CommandResult dry = txmqctl(nodes_[0].url(), {"topic", "delete", topic, "--dry-run"});
  ASSERT_EQ(dry.exit_code, 0) << dry.err;
  EXPECT_TRUE(Has(dry.out, "broker group g1: holds no part of topic")) << dry.out;
  EXPECT_TRUE(Has(dry.out, "would delete the topic's placement (2 queues)")) << dry.out;
  EXPECT_EQ(StoredPlacement(topic).queue_count, 2u) << "a dry run changes nothing";
  const CommandResult all = txmqctl(nodes_[0].url(), {"--json", "topic", "delete", topic});
  ASSERT_EQ(all.exit_code, 0) << all.err;
  j = nlohmann::json::parse(all.out, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << all.out;
  ASSERT_EQ(j["broker_groups"].size(), 2u) << all.out;
  EXPECT_EQ(j["broker_groups"][0]["broker_group"], "g1") << all.out;
  EXPECT_EQ(j["broker_groups"][0]["outcome"], "absent") << all.out;
  EXPECT_EQ(j["broker_groups"][1]["broker_group"], "g2") << all.out;
  EXPECT_EQ(j["broker_groups"][1]["outcome"], "deleted") << all.out;
  EXPECT_EQ(j["placement"]["outcome"], "deleted") << all.out;
  EXPECT_EQ(j["placement"]["queues"], 2) << all.out;
  EXPECT_EQ(j["other_groups"], nlohmann::json::array()) << all.out;
  {
    auto etcd = cluster::OpenEtcdCoordinator({.endpoints = {etcd_->endpoint()}});
    ASSERT_TRUE(etcd.ok());
    auto read = (*etcd)->Get(cluster::PlacementKey(cluster_, topic));
    ASSERT_TRUE(read.ok()) << read.status().ToString();
    EXPECT_TRUE(read->kvs.empty()) << "the placement is still in etcd";
  }
  for (const Node& n : nodes_) {
    const CommandResult shown = txmqctl(n.url(), {"topic", "show", topic});
    EXPECT_EQ(shown.exit_code, 4) << n.name << ": " << shown.out << shown.err;
  }
  // The name again, with another queue count, at the other group (which
  // learns of the deletion at its next read of the cluster map).
  CommandResult again;
  ASSERT_TRUE(WaitFor(
      [&] {
        again = txmqctl(nodes_[1].url(), {"topic", "create", topic, "--queues", "3"});
        return again.exit_code == 0;
      },
      15s))
      << again.err;
  EXPECT_EQ(StoredPlacement(topic).queue_count, 3u);
  const CommandResult nothing = txmqctl(nodes_[0].url(), {"topic", "delete", "never-was"});
  EXPECT_EQ(nothing.exit_code, 4) << nothing.out;  // NOT_FOUND
  EXPECT_TRUE(Has(nothing.err, "does not exist in any broker group")) << nothing.err;

  // A group that cannot be asked keeps its part, and the placement stays.
  Kill9(nodes_[1]);
  const CommandResult partial = txmqctl(nodes_[0].url(), {"topic", "delete", topic});
  EXPECT_NE(partial.exit_code, 0) << partial.out;
  EXPECT_TRUE(Has(partial.out, "broker group g2: its part stays")) << partial.out;
  EXPECT_TRUE(Has(partial.out, "the topic's placement stays while a broker group holds a part"))
      << partial.out;
  EXPECT_EQ(StoredPlacement(topic).queue_count, 3u);
}

}  // namespace
}  // namespace txmq::testing
