// Two broker groups, g1 = {a} and g2 = {b}, each one node (--min-isr 1),
// around the suite's real etcd, and what the tests across groups ask of
// them: where etcd placed a topic, keys and topics landing on a group,
// what one broker itself holds, and what a consumer given one node reads.
// Placement does not care how a group replicates, and two single-node
// groups keep these tests small.
#pragma once

#include <chrono>
#include <mutex>
#include <string>
#include <vector>

#include "broker/src/cluster/etcd_coordinator.h"
#include "broker/src/cluster/placement.h"
#include "broker/src/cluster/placement_directory.h"
#include "protocol/src/connection.h"
#include "protocol/src/message_codec.h"
#include "protocol/src/util.h"
#include "tests/cluster/txmqd_group_fixture.h"
#include "txmq/consumer.h"

namespace txmq::testing {

class TwoGroupsFixture : public TxmqdGroupFixture {
 protected:
  // Node `n` alone in broker group `group`.
  void StartAlone(Node& n, const std::string& group, const std::vector<std::string>& more = {}) {
    std::vector<std::string> argv = NodeArgv(n, group);
    argv.insert(argv.end(), more.begin(), more.end());
    n.process = Process::Spawn(argv, dir_.Sub(n.name + ".log"));
    ASSERT_NE(n.process, nullptr);
  }

  void WaitReady(const Node& n) {
    ASSERT_TRUE(
        WaitFor([&] { return std::filesystem::exists(Ready(n)); }, std::chrono::seconds(20)))
        << n.name << " never served; its log:\n"
        << ReadFile(dir_.Sub(n.name + ".log"));
  }

  // Two groups, g1 = {a} and g2 = {b}, both serving.
  void StartTwoGroups(const std::vector<std::string>& more = {}) {
    MakeNodes(2);
    StartAlone(nodes_[0], "g1", more);
    StartAlone(nodes_[1], "g2", more);
    WaitReady(nodes_[0]);
    WaitReady(nodes_[1]);
  }

  // The topic's placement as etcd has it.
  cluster::TopicPlacement StoredPlacement(const std::string& topic) {
    auto etcd = cluster::OpenEtcdCoordinator({.endpoints = {etcd_->endpoint()}});
    EXPECT_TRUE(etcd.ok());
    auto read = (*etcd)->Get(cluster::PlacementKey(cluster_, topic));
    EXPECT_TRUE(read.ok() && !read->kvs.empty()) << "no placement stored for " << topic;
    if (!read.ok() || read->kvs.empty()) return {};
    auto p = cluster::DecodeTopicPlacement(read->kvs.front().value);
    EXPECT_TRUE(p.ok()) << p.status().ToString();
    return p.ok() ? *p : cluster::TopicPlacement{};
  }

  // A topic name whose one queue the placement puts on `group` among `groups`.
  static std::string TopicWhollyOn(const std::string& group,
                                   const std::vector<std::string>& groups) {
    return TopicPlacedAs("one-queue-", {group}, groups);
  }

  // A topic name PREFIX<n> whose queues the placement puts on
  // `queue_groups` (one group per queue) among `groups`.
  static std::string TopicPlacedAs(const std::string& prefix,
                                   const std::vector<std::string>& queue_groups,
                                   const std::vector<std::string>& groups) {
    std::vector<cluster::GroupWeight> weights;
    for (const auto& g : groups) weights.push_back({.group = g, .weight = 1});
    const auto queues = static_cast<uint32_t>(queue_groups.size());
    for (int i = 0; i < 1000; ++i) {
      const std::string topic = prefix + std::to_string(i);
      auto p = cluster::PlaceQueues(topic, queues, weights);
      if (p.ok() && p->groups == queue_groups) return topic;
    }
    ADD_FAILURE() << "no topic " << prefix << "N is placed that way";
    return "";
  }

  // Every message of `topic` that the broker at `url` itself holds, read
  // by raw pulls (a Consumer would read the other groups' too).
  static std::vector<Received> StoredAt(const std::string& url, const std::string& topic) {
    auto connection =
        net::Connection::Open({.broker = url, .role = wire::Role::CONSUMER, .group = "inspect"});
    EXPECT_TRUE(connection.ok());
    std::vector<Received> got;
    for (int round = 0; connection.ok() && round < 100; ++round) {
      auto request = (*connection)->NewRequest();
      auto pull = request.envelope().initPull();
      pull.setGroup("inspect");
      pull.initTopics(1).set(0, topic);
      pull.setMaxMessages(64);
      pull.setWaitMs(500);
      pull.setVisibilityTimeoutMs(600'000);
      auto reply = (*connection)->CallSync(std::move(request), std::chrono::seconds(10));
      EXPECT_TRUE(reply.ok()) << reply.status().ToString();
      if (!reply.ok() || reply->envelope().getPullOk().getMessages().size() == 0) break;
      for (auto d : reply->envelope().getPullOk().getMessages()) {
        got.push_back(wire::DeliveredFromWire(d));
      }
    }
    return got;
  }

  // What a consumer of group "readers" given `url` receives of `topics`,
  // once it has `n` messages (or after 30 s).
  static std::vector<Received> Consume(const std::string& url,
                                       const std::vector<std::string>& topics, size_t n) {
    std::mutex mu;
    std::vector<Received> got;
    Consumer consumer(
        {.broker = url, .group = "readers", .long_poll = std::chrono::milliseconds(500)});
    for (const std::string& topic : topics) {
      EXPECT_TRUE(consumer
                      .Subscribe(topic,
                                 [&](const Received& m) {
                                   std::lock_guard<std::mutex> lock(mu);
                                   got.push_back(m);
                                   return ConsumeResult::Success();
                                 })
                      .ok());
    }
    EXPECT_TRUE(consumer.Start().ok());
    WaitFor(
        [&] {
          std::lock_guard<std::mutex> lock(mu);
          return got.size() >= n;
        },
        std::chrono::seconds(30));
    consumer.Shutdown();
    return got;
  }

  // A key whose queue (of `queues`) `placement` gives to `group`.
  static std::string KeyServedBy(const cluster::TopicPlacement& placement,
                                 const std::string& group) {
    for (int i = 0; i < 10000; ++i) {
      const std::string key = "k" + std::to_string(i);
      if (placement.groups[StableHash(key) % placement.queue_count] == group) return key;
    }
    ADD_FAILURE() << "no key lands on " << group;
    return "";
  }
};

}  // namespace txmq::testing
