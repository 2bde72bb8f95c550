// txmqd's cluster flags: a bad value stops txmqd before anything starts,
// with exit code 2 and a message naming the flag; without --etcd no other
// cluster flag is taken.
#include <gtest/gtest.h>

#include <string>
#include <vector>

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

}  // namespace
}  // namespace txmq
