// The cluster-status reply through a whole encoded frame, both forms: a
// member of a replicated group and a single broker.
#include <gtest/gtest.h>

#include "protocol/src/cluster_status_codec.h"
#include "protocol/src/codec.h"
#include "protocol/src/message_codec.h"

namespace txmq::wire {
namespace {

ClusterStatusView ThroughTheWire(const ClusterStatusView& view) {
  OutFrame f(9);
  FillClusterStatus(view, f.envelope().initClusterStatusOk());
  auto frame = DecodeFrame(f.Encode(), DecodeLimits{});
  EXPECT_TRUE(frame.ok()) << frame.status().ToString();
  if (!frame.ok()) return {};
  EXPECT_EQ(frame->envelope().which(), Envelope::CLUSTER_STATUS_OK);
  return ReadClusterStatus(frame->envelope().getClusterStatusOk());
}

TEST(ClusterStatusCodec, RoundTripsAMembersView) {
  ClusterStatusView v;
  v.member = true;
  v.cluster = "prod";
  v.group = "g1";
  v.node = "a";
  v.leading = true;
  v.leader = "a";
  v.leader_url = "tcp://127.0.0.1:7001";
  v.epoch = 7;
  v.isr = {"a", "b"};
  v.min_isr = 2;
  v.last_index = 1234;
  v.commit_index = 1230;
  v.coordinator_error = "UNAVAILABLE: etcd at http://127.0.0.1:2379: connection refused";
  v.replicas = {{"a", true, true, true, 1234, 0, 0},
                {"b", false, true, true, 1230, 4, 150},
                {"c", false, false, false, 0, 0, -1}};
  v.groups = {
      {"g1", "a", "tcp://127.0.0.1:7001", 7, {"tcp://127.0.0.1:7001", "tcp://127.0.0.1:7002"}},
      {"g2", "", "", 3, {}}};
  EXPECT_EQ(ThroughTheWire(v), v);
}

TEST(ClusterStatusCodec, ASingleBrokerSaysItIsNoMember) {
  ClusterStatusView v;
  v.node = "broker-1";
  const ClusterStatusView got = ThroughTheWire(v);
  EXPECT_FALSE(got.member);
  EXPECT_EQ(got.node, "broker-1");
  EXPECT_TRUE(got.replicas.empty());
  EXPECT_EQ(got, v);
}

TEST(ClusterStatusCodec, QueuesNameTheirGroupAndLeader) {
  OutFrame f(3);
  auto topic = f.envelope().initTopicShowOk();
  topic.setName("orders");
  auto queues = topic.initQueues(2);
  queues[0].setQueue(0);
  queues[0].setGroup("g1");
  queues[0].setLeader("a");
  queues[1].setQueue(1);  // a broker older than the fields: both empty
  auto frame = DecodeFrame(f.Encode(), DecodeLimits{});
  ASSERT_TRUE(frame.ok()) << frame.status().ToString();
  auto got = frame->envelope().getTopicShowOk().getQueues();
  EXPECT_EQ(ToString(got[0].getGroup()), "g1");
  EXPECT_EQ(ToString(got[0].getLeader()), "a");
  EXPECT_EQ(got[1].getGroup().size(), 0u);
  EXPECT_EQ(got[1].getLeader().size(), 0u);
}

}  // namespace
}  // namespace txmq::wire
