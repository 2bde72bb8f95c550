// txmqd as a replicated broker group, on real processes: a real etcd
// (etcd_server.h), txmqd nodes on free loopback ports with their own data
// directories, kill -9 as the failure. What is promised: an acknowledged
// send survives the loss of its leader, and with --min-isr 2 nothing is
// acknowledged that fewer than two nodes hold.
#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

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

  constexpr int kMessages = 200;
  std::vector<std::string> acked;
  {
    Producer producer({.broker = leader->url(), .send_timeout = 5s});
    ASSERT_TRUE(producer.Start().ok());
    std::vector<std::future<Result<SendResult>>> sends;
    for (int i = 0; i < kMessages; ++i) {
      sends.push_back(producer.SendAsync({.topic = "orders",
                                          .key = std::to_string(i % 7),
                                          .body = "m" + std::to_string(i),
                                          .id = "id-" + std::to_string(i)}));
    }
    for (int i = 0; i < kMessages; ++i) {
      auto r = sends[i].get();
      ASSERT_TRUE(r.ok()) << i << ": " << r.status().ToString();
      acked.push_back("id-" + std::to_string(i));
    }
  }

  const std::string old = leader->name;
  Kill9(*leader);
  Node* next = WaitForLeader(30s);
  ASSERT_NE(next, nullptr);
  EXPECT_NE(next->name, old);

  auto delivered = testing::DrainTopic(next->url(), "orders", acked.size());
  for (const std::string& id : acked) {
    EXPECT_EQ(delivered.count(id), 1u) << "acknowledged " << id << " lost in the failover";
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

}  // namespace
}  // namespace txmq
