// txmqd as a replicated broker group, on real processes: a real etcd
// (etcd_server.h), txmqd nodes on free loopback ports with their own data
// directories, kill -9 as the failure. What is promised: an acknowledged
// send survives the loss of its leader, and with --min-isr 2 nothing is
// acknowledged that fewer than two nodes hold.
#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>
#include <future>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "broker/src/cluster/etcd_coordinator.h"
#include "broker/src/cluster/group_state.h"
#include "tests/cluster/etcd_server.h"
#include "tests/testutil/testutil.h"
#include "txmq/producer.h"

namespace txmq {
namespace {

using namespace std::chrono_literals;
using testing::EtcdServer;
using testing::Process;

struct Node {
  std::string name;
  int client_port = 0;
  int replication_port = 0;
  std::unique_ptr<Process> process;
  std::string url() const { return "tcp://127.0.0.1:" + std::to_string(client_port); }
  std::string replication() const { return "tcp://127.0.0.1:" + std::to_string(replication_port); }
};

class TxmqdGroup : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { etcd_ = EtcdServer::Start(); }
  static void TearDownTestSuite() { etcd_.reset(); }

  void SetUp() override {
    ASSERT_NE(etcd_, nullptr);
    cluster_ = ::testing::UnitTest::GetInstance()->current_test_info()->name();
  }

  // Nodes named a, b, ... on fresh ports (not started).
  void MakeNodes(int n) {
    for (int i = 0; i < n; ++i) {
      Node node;
      node.name = std::string(1, static_cast<char>('a' + i));
      node.client_port = testing::FreeLoopbackPort();
      node.replication_port = testing::FreeLoopbackPort();
      nodes_.push_back(std::move(node));
    }
  }

  void StartNode(Node& n, int min_isr) {
    std::string peers;
    for (const Node& p : nodes_) {
      if (p.name == n.name) continue;
      peers += (peers.empty() ? "" : ",") + p.name + "=" + p.replication();
    }
    n.process = Process::Spawn({testing::BinPath("txmqd"),
                                "--etcd",
                                etcd_->endpoint(),
                                "--cluster",
                                cluster_,
                                "--group",
                                "g",
                                "--node",
                                n.name,
                                "--listen",
                                n.url(),
                                "--replication-listen",
                                n.replication(),
                                "--peers",
                                peers,
                                "--min-isr",
                                std::to_string(min_isr),
                                "--data-dir",
                                dir_.Sub(n.name),
                                "--ready-file",
                                Ready(n),
                                "--client-timeout",
                                "3s"},
                               dir_.Sub(n.name + ".log"));
    ASSERT_NE(n.process, nullptr);
  }

  std::string Ready(const Node& n) const { return dir_.Sub(n.name + ".ready"); }

  // The node that serves (has written its ready file) among the living,
  // waiting for one up to `timeout`.
  Node* WaitForLeader(std::chrono::milliseconds timeout = 20s) {
    Node* leader = nullptr;
    testing::WaitFor(
        [&] {
          for (Node& n : nodes_) {
            if (n.process && std::filesystem::exists(Ready(n))) leader = &n;
          }
          return leader != nullptr;
        },
        timeout);
    if (leader == nullptr) {
      for (const Node& n : nodes_) {
        ADD_FAILURE() << "no leader; " << n.name << "'s log:\n"
                      << testing::ReadFile(dir_.Sub(n.name + ".log"));
      }
    }
    return leader;
  }

  // The group's ISR as etcd has it (empty when it cannot be read).
  std::vector<std::string> Isr() {
    auto etcd = cluster::OpenEtcdCoordinator({.endpoints = {etcd_->endpoint()}});
    if (!etcd.ok()) return {};
    auto read = (*etcd)->Get(cluster::GroupStateKey(cluster_, "g"));
    if (!read.ok() || read->kvs.empty()) return {};
    auto state = cluster::DecodeGroupState(read->kvs.front().value);
    return state.ok() ? state->isr : std::vector<std::string>{};
  }

  // Sends `n` messages with ids prefix-0.. to `url`; every one must be
  // acknowledged. Their ids.
  std::vector<std::string> SendAll(const std::string& url, const std::string& prefix, int n) {
    std::vector<std::string> ids;
    Producer producer({.broker = url, .send_timeout = 5s});
    EXPECT_TRUE(producer.Start().ok());
    std::vector<std::future<Result<SendResult>>> sends;
    for (int i = 0; i < n; ++i) {
      ids.push_back(prefix + "-" + std::to_string(i));
      sends.push_back(producer.SendAsync({.topic = "orders",
                                          .key = std::to_string(i % 7),
                                          .body = "m" + std::to_string(i),
                                          .id = ids.back()}));
    }
    for (int i = 0; i < n; ++i) {
      auto r = sends[i].get();
      EXPECT_TRUE(r.ok()) << ids[i] << ": " << r.status().ToString();
    }
    return ids;
  }

  void Kill9(Node& n) {
    n.process->Signal(SIGKILL);
    (void)n.process->Wait(10s);
    n.process.reset();
    std::filesystem::remove(Ready(n));
  }

  static std::unique_ptr<EtcdServer> etcd_;
  testing::TempDir dir_;
  std::string cluster_;
  std::vector<Node> nodes_;
};

std::unique_ptr<EtcdServer> TxmqdGroup::etcd_;

TEST_F(TxmqdGroup, KillNineTheLeaderLosesNoAcknowledgedMessage) {
  MakeNodes(3);
  for (Node& n : nodes_) StartNode(n, 2);
  Node* leader = WaitForLeader();
  ASSERT_NE(leader, nullptr);

  // A node that does not lead sends clients to the one that does.
  for (const Node& n : nodes_) {
    if (&n == leader) continue;
    Producer lost({.broker = n.url(), .send_timeout = 2s, .retries = 0});
    ASSERT_TRUE(lost.Start().ok());
    auto r = lost.Send({.topic = "orders", .body = "to a follower", .id = "follower"});
    ASSERT_FALSE(r.ok()) << n.name << " does not lead, yet acknowledged";
    EXPECT_EQ(r.status().code(), StatusCode::kUnavailable) << r.status().ToString();
    EXPECT_NE(r.status().message().find("NOT_LEADER"), std::string::npos) << r.status().ToString();
    EXPECT_NE(r.status().message().find(leader->url()), std::string::npos)
        << n.name << " does not name the leader: " << r.status().ToString();
  }

  std::vector<std::string> acked = SendAll(leader->url(), "first", 200);
  ASSERT_FALSE(HasFailure());

  Node* old = leader;
  Kill9(*old);
  Node* next = WaitForLeader(30s);
  ASSERT_NE(next, nullptr);
  EXPECT_NE(next, old);
  auto delivered = testing::DrainTopic(next->url(), "orders", acked.size(), 300ms);
  for (const std::string& id : acked) {
    EXPECT_EQ(delivered.count(id), 1u) << "acknowledged " << id << " lost in the failover";
  }

  // The old leader comes back (its log may hold a suffix nobody else has),
  // catches up and is taken into the ISR again; then the second leader dies.
  StartNode(*old, 2);
  for (const std::string& id : SendAll(next->url(), "second", 100)) acked.push_back(id);
  ASSERT_FALSE(HasFailure());
  ASSERT_TRUE(testing::WaitFor([&] { return Isr().size() == 3; }, 20s))
      << old->name << " did not rejoin the ISR; its log:\n"
      << testing::ReadFile(dir_.Sub(old->name + ".log"));
  Kill9(*next);
  Node* third = WaitForLeader(30s);
  ASSERT_NE(third, nullptr);
  delivered = testing::DrainTopic(third->url(), "orders", acked.size(), 300ms, 60s, "again");
  for (const std::string& id : acked) {
    EXPECT_EQ(delivered.count(id), 1u) << "acknowledged " << id << " lost in the second failover";
  }
}

TEST_F(TxmqdGroup, MinIsrTwoAcknowledgesNothingOneNodeHolds) {
  MakeNodes(2);
  for (Node& n : nodes_) StartNode(n, 2);
  Node* leader = WaitForLeader();
  ASSERT_NE(leader, nullptr);
  Producer producer({.broker = leader->url(), .send_timeout = 2s, .retries = 0});
  ASSERT_TRUE(producer.Start().ok());
  auto first = producer.Send({.topic = "t", .body = "both hold it", .id = "first"});
  ASSERT_TRUE(first.ok()) << first.status().ToString();

  for (Node& n : nodes_) {
    if (&n != leader) Kill9(n);
  }
  auto second = producer.Send({.topic = "t", .body = "only one holds it", .id = "second"});
  EXPECT_FALSE(second.ok()) << "acknowledged with one node alive under --min-isr 2";
}

// A leader paused past its lease (SIGSTOP: a long GC pause, a frozen VM)
// wakes up deposed. Whatever it was asked meanwhile it must not
// acknowledge unless the new group holds it; it notices and exits (5), and
// every send any node acknowledged is read from the new leader.
TEST_F(TxmqdGroup, ALeaderPausedPastItsLeaseAcknowledgesNothingTheGroupLacks) {
  MakeNodes(3);
  for (Node& n : nodes_) StartNode(n, 2);
  Node* old = WaitForLeader();
  ASSERT_NE(old, nullptr);
  std::vector<std::string> acked = SendAll(old->url(), "before", 50);
  ASSERT_FALSE(HasFailure());

  Producer stale({.broker = old->url(), .send_timeout = 15s, .retries = 0});
  ASSERT_TRUE(stale.Start().ok());
  old->process->Signal(SIGSTOP);
  // Sent to the paused leader: they wait in its socket.
  std::vector<std::string> stale_ids;
  std::vector<std::future<Result<SendResult>>> stale_sends;
  for (int i = 0; i < 20; ++i) {
    stale_ids.push_back("paused-" + std::to_string(i));
    stale_sends.push_back(
        stale.SendAsync({.topic = "orders", .body = "to a paused leader", .id = stale_ids.back()}));
  }
  Node* next = nullptr;
  ASSERT_TRUE(testing::WaitFor(
      [&] {
        for (Node& n : nodes_) {
          if (&n != old && std::filesystem::exists(Ready(n))) next = &n;
        }
        return next != nullptr;
      },
      30s))
      << "no other node took over from the paused leader";
  for (const std::string& id : SendAll(next->url(), "after", 50)) acked.push_back(id);
  ASSERT_FALSE(HasFailure());

  old->process->Signal(SIGCONT);
  for (size_t i = 0; i < stale_sends.size(); ++i) {
    auto r = stale_sends[i].get();
    if (r.ok()) acked.push_back(stale_ids[i]);  // allowed only if the group has it (below)
  }
  auto exited = old->process->Wait(20s);
  ASSERT_TRUE(exited.has_value()) << "the deposed leader keeps running";
  EXPECT_EQ(*exited, 5) << testing::ReadFile(dir_.Sub(old->name + ".log"));
  old->process.reset();
  std::filesystem::remove(Ready(*old));

  auto delivered = testing::DrainTopic(next->url(), "orders", acked.size(), 300ms);
  for (const std::string& id : acked) {
    EXPECT_EQ(delivered.count(id), 1u) << "acknowledged " << id << " is not in the new group";
  }
}

}  // namespace
}  // namespace txmq
