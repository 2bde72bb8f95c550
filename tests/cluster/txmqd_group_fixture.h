// The fixture of the replicated-group tests: a real etcd (etcd_server.h)
// shared by a suite, and txmqd nodes a, b, c... on free loopback ports with
// their own data directories under a temp dir, started and killed (-9) by
// the test. Each test gets its own cluster name, so suites can share etcd.
#pragma once

#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "broker/src/cluster/etcd_coordinator.h"
#include "broker/src/cluster/group_state.h"
#include "tests/cluster/etcd_server.h"
#include "tests/testutil/testutil.h"
#include "txmq/producer.h"

namespace txmq::testing {

struct Node {
  std::string name;
  int client_port = 0;
  int replication_port = 0;
  std::unique_ptr<Process> process;
  std::string url() const { return "tcp://127.0.0.1:" + std::to_string(client_port); }
  std::string replication() const { return "tcp://127.0.0.1:" + std::to_string(replication_port); }
};

class TxmqdGroupFixture : public ::testing::Test {
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
      node.client_port = FreeLoopbackPort();
      node.replication_port = FreeLoopbackPort();
      nodes_.push_back(std::move(node));
    }
  }

  void StartNode(Node& n, int min_isr, const std::vector<std::string>& extra = {}) {
    std::string peers;
    for (const Node& p : nodes_) {
      if (p.name == n.name) continue;
      peers += (peers.empty() ? "" : ",") + p.name + "=" + ReplicationEndpoint(n, p);
    }
    std::vector<std::string> argv = NodeArgv(n, "g");
    argv.insert(argv.end(), {"--peers", peers, "--min-isr", std::to_string(min_isr)});
    if (lease_ttl_seconds_ > 0) {
      argv.insert(argv.end(), {"--lease-ttl", std::to_string(lease_ttl_seconds_)});
    }
    argv.insert(argv.end(), extra.begin(), extra.end());
    n.process = Process::Spawn(argv, dir_.Sub(n.name + ".log"));
    ASSERT_NE(n.process, nullptr);
  }

  // The flags every test node gets: node `n` of broker group `group`,
  // with its own ports, data dir and ready file.
  std::vector<std::string> NodeArgv(const Node& n, const std::string& group) const {
    return {BinPath("txmqd"),
            "--etcd",
            EtcdEndpoint(n),
            "--cluster",
            cluster_,
            "--group",
            group,
            "--node",
            n.name,
            "--listen",
            n.url(),
            "--replication-listen",
            n.replication(),
            "--data-dir",
            dir_.Sub(n.name),
            "--ready-file",
            Ready(n),
            "--client-timeout",
            "3s"};
  }

  // Where node `from` reaches `to`'s replication port, and where `n`
  // reaches etcd: tests that put a proxy on a link override them.
  virtual std::string ReplicationEndpoint(const Node& /*from*/, const Node& to) const {
    return to.replication();
  }
  virtual std::string EtcdEndpoint(const Node& /*n*/) const { return etcd_->endpoint(); }

  std::string Ready(const Node& n) const { return dir_.Sub(n.name + ".ready"); }

  // Every node's client URL, comma-separated: a client's bootstrap list.
  std::string AllUrls() const {
    std::string urls;
    for (const Node& n : nodes_) urls += (urls.empty() ? "" : ",") + n.url();
    return urls;
  }

  // The node that serves (has written its ready file) among the living,
  // waiting for one up to `timeout`.
  Node* WaitForLeader(std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
    Node* leader = nullptr;
    WaitFor(
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
                      << ReadFile(dir_.Sub(n.name + ".log"));
      }
    }
    return leader;
  }

  // The last `lines` lines of every node's log, for a failure message:
  // the temp dir and its logs are gone once the test ends.
  std::string LogTails(size_t lines = 40) const {
    std::string out;
    for (const Node& n : nodes_) {
      const std::vector<std::string> all = SplitLines(ReadFile(dir_.Sub(n.name + ".log")));
      out += "--- " + n.name + "'s log, last " + std::to_string(lines) + " lines:\n";
      for (size_t i = all.size() > lines ? all.size() - lines : 0; i < all.size(); ++i) {
        out += all[i] + "\n";
      }
    }
    return out;
  }

  // The group's record as etcd has it (none when it cannot be read).
  std::optional<cluster::GroupState> GroupRecord() {
    auto etcd = cluster::OpenEtcdCoordinator({.endpoints = {etcd_->endpoint()}});
    if (!etcd.ok()) return std::nullopt;
    auto read = (*etcd)->Get(cluster::GroupStateKey(cluster_, "g"));
    if (!read.ok() || read->kvs.empty()) return std::nullopt;
    auto state = cluster::DecodeGroupState(read->kvs.front().value);
    if (!state.ok()) return std::nullopt;
    return *state;
  }
  // Its ISR (empty when it cannot be read).
  std::vector<std::string> Isr() {
    auto state = GroupRecord();
    return state ? state->isr : std::vector<std::string>{};
  }
  // The node that won its last election ("" unknown).
  std::string GroupLeader() {
    auto state = GroupRecord();
    return state ? state->leader : "";
  }

  // Sends `n` messages with ids prefix-0.. to `url`; every one must be
  // acknowledged. Their ids.
  std::vector<std::string> SendAll(const std::string& url, const std::string& prefix, int n) {
    std::vector<std::string> ids;
    Producer producer({.broker = url, .send_timeout = std::chrono::seconds(5)});
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

  // The same one at a time, each acknowledged before the next is sent:
  // a round each, so the replica log gets as many entries.
  std::vector<std::string> SendOneByOne(const std::string& url, const std::string& prefix, int n) {
    std::vector<std::string> ids;
    Producer producer({.broker = url, .send_timeout = std::chrono::seconds(5)});
    EXPECT_TRUE(producer.Start().ok());
    for (int i = 0; i < n; ++i) {
      ids.push_back(prefix + "-" + std::to_string(i));
      auto r = producer.Send({.topic = "orders", .key = "k", .body = "b", .id = ids.back()});
      EXPECT_TRUE(r.ok()) << ids.back() << ": " << r.status().ToString();
    }
    return ids;
  }

  void Kill9(Node& n) {
    n.process->Signal(SIGKILL);
    (void)n.process->Wait(std::chrono::seconds(10));
    n.process.reset();
    std::filesystem::remove(Ready(n));
  }

  static inline std::unique_ptr<EtcdServer> etcd_;
  // Every node's --lease-ttl; 0: txmqd's default (3 s). Below 2 s a loaded
  // CI machine stalls a keep-alive long enough to depose a live leader.
  int lease_ttl_seconds_ = 0;
  TempDir dir_;
  std::string cluster_;
  std::vector<Node> nodes_;
};

}  // namespace txmq::testing
