// txmqd's cluster flags: a bad value stops txmqd before anything starts,
// with exit code 2 and a message naming the flag; without --etcd no other
// cluster flag is taken.
#include <gtest/gtest.h>
#include <httplib.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "broker/src/cluster/etcd_coordinator.h"
#include "broker/src/cluster/group_state.h"
#include "tests/cluster/txmqd_group_fixture.h"
#include "tests/testutil/testutil.h"

namespace txmq {
namespace {

using testing::RunCommand;

// Runs txmqd with `args` on a fresh data directory; it must refuse.
void ExpectRefused(std::vector<std::string> args, const std::string& named) {
  testing::TempDir dir;
  std::vector<std::string> argv = {testing::BinPath("txmqd"), "--data-dir", dir.Sub("data"),
                                   "--listen", "tcp://127.0.0.1:1"};
  argv.insert(argv.end(), args.begin(), args.end());
  auto r = RunCommand(argv, "", std::chrono::seconds(20));
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  EXPECT_NE(r.err.find(named), std::string::npos) << "the error names " << named << ": " << r.err;
}

const std::vector<std::string> kCluster = {"--etcd", "http://127.0.0.1:1",   "--group",
                                           "g",      "--replication-listen", "tcp://127.0.0.1:2"};

std::vector<std::string> Cluster(std::vector<std::string> more) {
  std::vector<std::string> out = kCluster;
  out.insert(out.end(), more.begin(), more.end());
  return out;
}

TEST(TxmqdFlags, ClusterFlagsWithoutEtcdAreRefused) {
  ExpectRefused({"--group", "g"}, "--etcd");
  ExpectRefused({"--min-isr", "2"}, "--etcd");
  ExpectRefused({"--lease-ttl", "5"}, "--etcd");
  ExpectRefused({"--group-weight", "2"}, "--etcd");
}

TEST(TxmqdFlags, AGroupWeightOutOfRangeIsRefusedNamingTheValue) {
  ExpectRefused(Cluster({"--group-weight", "0"}), "--group-weight 0");
  ExpectRefused(Cluster({"--group-weight", "1001"}), "--group-weight 1001");
  ExpectRefused(Cluster({"--group-weight", "heavy"}), "--group-weight");
}

TEST(TxmqdFlags, ALeaseTtlOutOfRangeIsRefusedNamingTheValue) {
  ExpectRefused(Cluster({"--lease-ttl", "0"}), "--lease-ttl 0");
  ExpectRefused(Cluster({"--lease-ttl", "61"}), "--lease-ttl 61");
  ExpectRefused(Cluster({"--lease-ttl", "-2"}), "--lease-ttl -2");
  ExpectRefused(Cluster({"--lease-ttl", "3s"}), "3s");  // whole seconds, no unit
  ExpectRefused(Cluster({"--lease-ttl", "x"}), "--lease-ttl");
}

TEST(TxmqdFlags, HelpAndPrintConfigNameTheLeaseTtl) {
  auto help = RunCommand({testing::BinPath("txmqd"), "--help"}, "", std::chrono::seconds(20));
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_NE(help.out.find("--lease-ttl"), std::string::npos) << help.out;
  auto config =
      RunCommand({testing::BinPath("txmqd"), "--print-config"}, "", std::chrono::seconds(20));
  EXPECT_EQ(config.exit_code, 0);
  EXPECT_NE(config.out.find("# lease-ttl = 3"), std::string::npos) << config.out;
}

TEST(TxmqdFlags, ABadClusterValueIsRefusedByName) {
  ExpectRefused(Cluster({"--min-isr", "0"}), "--min-isr");
  ExpectRefused(Cluster({"--min-isr", "2"}), "--min-isr");  // a group of one node
  ExpectRefused(Cluster({"--peers", "b"}), "--peers");
  ExpectRefused(Cluster({"--node", "a/b"}), "--node");
  ExpectRefused({"--etcd", "127.0.0.1:2379", "--group", "g", "--replication-listen", "tcp://x:1"},
                "--etcd");
  ExpectRefused({"--etcd", "http://127.0.0.1:1", "--replication-listen", "tcp://127.0.0.1:2"},
                "--group");
  ExpectRefused({"--etcd", "http://127.0.0.1:1", "--group", "g"}, "--replication-listen");
}

TEST(TxmqdFlags, ReplicationKeysAreCheckedBeforeAnythingStarts) {
  testing::TempDir keys;
  ExpectRefused(Cluster({"--replication-peer-keys", keys.path()}), "--replication-key");
  ExpectRefused(Cluster({"--replication-key", keys.Sub("a.key")}), "--replication-peer-keys");
  // Unreadable key files are named.
  ExpectRefused(
      Cluster({"--replication-key", keys.Sub("a.key"), "--replication-peer-keys", keys.path()}),
      keys.Sub("a.key"));
  ExpectRefused({"--replication-key", "a.key"}, "--etcd");
}

TEST(TxmqdFlags, PlaintextReplicationOtherMachinesCanReachNeedsInsecure) {
  ExpectRefused(
      {"--etcd", "http://127.0.0.1:1", "--group", "g", "--replication-listen", "tcp://0.0.0.0:2"},
      "--insecure");
}

// The flag reaches etcd: the lease a node registers with is granted for
// --lease-ttl seconds (this etcd's minimum is 1 s, etcd_server.h).
class TxmqdLeaseTtl : public testing::TxmqdGroupFixture {
 protected:
  // The TTL etcd granted the lease `node`'s liveness key is bound to (0
  // when it cannot be read).
  int64_t GrantedTtl(const std::string& node) {
    auto etcd = cluster::OpenEtcdCoordinator({.endpoints = {etcd_->endpoint()}});
    if (!etcd.ok()) return 0;
    auto read = (*etcd)->Get(cluster::BrokerKey(cluster_, node));
    if (!read.ok() || read->kvs.empty() || read->kvs.front().lease == 0) return 0;
    const std::string host_port = etcd_->endpoint().substr(std::string("http://").size());
    httplib::Client client("http://" + host_port);
    client.set_connection_timeout(std::chrono::seconds(5));
    client.set_read_timeout(std::chrono::seconds(5));
    const nlohmann::json request = {{"ID", std::to_string(read->kvs.front().lease)}};
    auto answer = client.Post("/v3/lease/timetolive", request.dump(), "application/json");
    if (!answer || answer->status != 200) return 0;
    const auto body = nlohmann::json::parse(answer->body, nullptr, false);
    if (!body.is_object() || !body.contains("grantedTTL")) return 0;
    const auto& granted = body["grantedTTL"];
    return granted.is_string() ? std::stoll(granted.get<std::string>()) : granted.get<int64_t>();
  }
};

TEST_F(TxmqdLeaseTtl, TheNodesLeaseIsGrantedForTheFlagsTtl) {
  MakeNodes(2);
  StartNode(nodes_[0], 1, {"--lease-ttl", "7"});
  StartNode(nodes_[1], 1);  // the default
  ASSERT_NE(WaitForLeader(), nullptr);
  int64_t a = 0, b = 0;
  testing::WaitFor(
      [&] {
        a = GrantedTtl("a");
        b = GrantedTtl("b");
        return a != 0 && b != 0;
      },
      std::chrono::seconds(20));
  EXPECT_EQ(a, 7);
  EXPECT_EQ(b, 3);
}

}  // namespace
}  // namespace txmq
