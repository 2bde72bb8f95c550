// A replicated group whose replication links run CURVE (--replication-key,
// --replication-peer-keys), on real processes and a real etcd. What is
// promised: the group replicates and fails over as in plaintext, and a
// node that presents a key the others do not list never gets into the
// ISR, so it can neither hold an acknowledged message nor lead.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "protocol/src/curve_keys.h"
#include "tests/cluster/txmqd_group_fixture.h"

namespace txmq {
namespace {

using namespace std::chrono_literals;
using testing::Node;

class TxmqdCurveGroup : public testing::TxmqdGroupFixture {
 protected:
  void SetUp() override {
    TxmqdGroupFixture::SetUp();
    if (!curve::Available()) GTEST_SKIP() << "this libzmq has no CURVE";
    std::filesystem::create_directories(dir_.Sub("keys"));
  }

  // keys/NAME.key and keys/NAME.pub, as `txmqctl keygen` writes them.
  void KeyGen(const std::string& name) {
    auto pair = curve::NewKeyPair();
    ASSERT_TRUE(pair.ok()) << pair.status().ToString();
    ASSERT_TRUE(curve::WriteKeyPair(dir_.Sub("keys/" + name), *pair).ok());
  }

  void StartWithKey(Node& n, const std::string& key_name) {
    StartNode(n, 2,
              {"--replication-key", dir_.Sub("keys/" + key_name + ".key"),
               "--replication-peer-keys", dir_.Sub("keys")});
  }

  bool InIsr(const std::string& node) {
    const std::vector<std::string> isr = Isr();
    return std::find(isr.begin(), isr.end(), node) != isr.end();
  }
};

TEST_F(TxmqdCurveGroup, ReplicatesAndFailsOverOverCurveLinks) {
  MakeNodes(3);
  for (const Node& n : nodes_) KeyGen(n.name);
  for (Node& n : nodes_) StartWithKey(n, n.name);
  Node* leader = WaitForLeader();
  ASSERT_NE(leader, nullptr);
  std::vector<std::string> acked = SendAll(leader->url(), "curve", 100);
  ASSERT_FALSE(HasFailure());
  ASSERT_TRUE(testing::WaitFor([&] { return Isr().size() == 3; }, 20s))
      << "every node should be in sync over CURVE; leader's log:\n"
      << testing::ReadFile(dir_.Sub(leader->name + ".log"));
  EXPECT_NE(testing::ReadFile(dir_.Sub(leader->name + ".log")).find("(CURVE)"), std::string::npos)
      << "the node logs that its links are encrypted";

  Node* old = leader;
  Kill9(*old);
  Node* next = WaitForLeader(30s);
  ASSERT_NE(next, nullptr);
  EXPECT_NE(next, old);
  auto delivered = testing::DrainTopic(next->url(), "orders", acked.size(), 300ms);
  for (const std::string& id : acked) {
    EXPECT_EQ(delivered.count(id), 1u) << "acknowledged " << id << " lost in the failover";
  }
}

TEST_F(TxmqdCurveGroup, ANodeWithAKeyThePeersDoNotListNeverJoinsTheIsr) {
  MakeNodes(3);
  for (const Node& n : nodes_) KeyGen(n.name);
  KeyGen("impostor");  // c runs with this key; the others know c.pub
  Node& a = nodes_[0];
  Node& b = nodes_[1];
  Node& c = nodes_[2];
  StartWithKey(a, a.name);
  StartWithKey(b, b.name);
  Node* leader = WaitForLeader();
  ASSERT_NE(leader, nullptr);
  StartWithKey(c, "impostor");

  // Writes go on with a and b; c gets nothing to hold, however long it
  // tries (several of the leader's lag limits).
  for (int round = 0; round < 4; ++round) {
    SendAll(leader->url(), "round" + std::to_string(round), 20);
    ASSERT_FALSE(HasFailure());
    std::this_thread::sleep_for(1s);
    EXPECT_FALSE(InIsr(c.name)) << "a node with an unlisted key is in the ISR; its log:\n"
                                << testing::ReadFile(dir_.Sub(c.name + ".log"));
  }
  EXPECT_FALSE(c.process->Wait(0ms).has_value()) << "a refused node keeps trying, it does not exit";
}

}  // namespace
}  // namespace txmq
