// A replicated group whose replication links run CURVE (--replication-key,
// --replication-peer-keys), on real processes and a real etcd. What is
// promised: the group replicates and fails over as in plaintext, and a
// node that presents a key the others do not list never gets into the
// ISR, so it can neither hold an acknowledged message nor lead. With
// CURVE for clients too (--curve-secret-key, --acl), a node that does not
// lead answers CURVE clients NOT_LEADER naming the leader, behind the same
// ZAP check as the broker, so a client given a follower first reaches the
// leader at once instead of waiting out its call timeout.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "protocol/src/curve_keys.h"
#include "tests/cluster/txmqd_group_fixture.h"
#include "txmq/producer.h"

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

  std::string PublicKey(const std::string& name) {
    std::string key = testing::ReadFile(dir_.Sub("keys/" + name + ".pub"));
    while (!key.empty() && (key.back() == '\n' || key.back() == '\r')) key.pop_back();
    return key;
  }

  // Clients over CURVE too: every node serves with the one broker key
  // pair (a client pins one server key for the whole list) and one ACL
  // naming `app`; `stranger` has a key nobody lists.
  void StartWithClientCurve(Node& n) {
    StartNode(n, 2,
              {"--replication-key", dir_.Sub("keys/" + n.name + ".key"), "--replication-peer-keys",
               dir_.Sub("keys"), "--curve-secret-key", dir_.Sub("keys/broker.key"), "--acl",
               dir_.Sub("acl.json")});
  }
  void WriteClientKeysAndAcl() {
    KeyGen("broker");
    KeyGen("app");
    KeyGen("stranger");
    const nlohmann::json acl = {
        {"principals",
         {{"app",
           {{"public_key", PublicKey("app")}, {"produce", {"orders"}}, {"consume", {"audit"}}}}}}};
    std::ofstream(dir_.Sub("acl.json")) << acl.dump(2);
  }

  // txmqctl as `who` (its keys) against `url`.
  testing::CommandResult Ctl(const std::string& who, const std::string& url,
                             std::vector<std::string> args) {
    std::vector<std::string> argv{testing::BinPath("txmqctl"), "--broker", url, "--timeout", "5s"};
    if (!who.empty()) {
      argv.insert(argv.end(), {"--curve-key", dir_.Sub("keys/" + who + ".key"), "--server-key",
                               dir_.Sub("keys/broker.pub")});
    }
    argv.insert(argv.end(), args.begin(), args.end());
    return testing::RunCommand(argv, "", 30s);
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
  const auto exited = c.process->Wait(0ms);
  EXPECT_FALSE(exited.has_value()) << "a refused node keeps trying, it does not exit (it exited "
                                   << exited.value_or(0) << "); its log:\n"
                                   << testing::ReadFile(dir_.Sub(c.name + ".log"));
}

TEST_F(TxmqdCurveGroup, CurveClientsGivenAFollowerFirstReachTheLeaderWellWithinTheirTimeout) {
  MakeNodes(3);
  for (const Node& n : nodes_) KeyGen(n.name);
  WriteClientKeysAndAcl();
  for (Node& n : nodes_) StartWithClientCurve(n);
  Node* leader = WaitForLeader();
  ASSERT_NE(leader, nullptr);
  std::vector<Node*> followers;
  for (Node& n : nodes_) {
    if (&n != leader) followers.push_back(&n);
  }
  // A follower answers once it has read the record naming the leader.
  EXPECT_TRUE(testing::WaitFor(
      [&] {
        auto r = Ctl("app", followers[0]->url(), {"--json", "cluster", "status", "--local"});
        return r.exit_code == 0 && r.out.find(leader->url()) != std::string::npos;
      },
      20s))
      << "a follower over CURVE does not say where the leader is; its log:\n"
      << testing::ReadFile(dir_.Sub(followers[0]->name + ".log"));

  // The call timeout is 10 s; the leader must be found in a fraction of it.
  constexpr auto kTimeout = 10s;
  constexpr auto kPrompt = 3s;
  const std::vector<std::string> lists = {
      followers[0]->url(),  // only a follower: nothing to rotate to
      followers[0]->url() + "," + followers[1]->url() + "," + leader->url(),
  };
  for (size_t i = 0; i < lists.size(); ++i) {
    Producer producer({.broker = lists[i],
                       .curve_key = dir_.Sub("keys/app.key"),
                       .server_key = dir_.Sub("keys/broker.pub"),
                       .send_timeout = kTimeout,
                       .retries = 0});
    ASSERT_TRUE(producer.Start().ok());
    const auto start = std::chrono::steady_clock::now();
    auto sent = producer.Send(
        {.topic = "orders", .body = "via a follower", .id = "curve-" + std::to_string(i)});
    const auto took = std::chrono::steady_clock::now() - start;
    EXPECT_TRUE(sent.ok()) << lists[i] << ": " << sent.status().ToString();
    EXPECT_LT(took, kPrompt) << lists[i] << ": the leader was found after "
                             << std::chrono::duration<double>(took).count() << " s";
  }

  // The follower's socket admits only the ACL's keys, as the broker's does.
  auto stranger = Ctl("stranger", followers[0]->url(), {"cluster", "status", "--local"});
  EXPECT_EQ(stranger.exit_code, 6) << stranger.out << stranger.err;
  EXPECT_NE(stranger.err.find("refused this client's CURVE key"), std::string::npos)
      << stranger.err;
  auto plain = Ctl("", followers[0]->url(), {"cluster", "status", "--local"});
  EXPECT_NE(plain.exit_code, 0) << plain.out;
  EXPECT_NE(testing::ReadFile(dir_.Sub(followers[0]->name + ".log")).find("CURVE self-test passed"),
            std::string::npos)
      << "the follower proves an unknown key is refused before it answers anyone";

  // SIGHUP re-reads the ACL while the node follows: a revoked key is
  // refused there from then on.
  const nlohmann::json only_stranger = {
      {"principals", {{"stranger", {{"public_key", PublicKey("stranger")}}}}}};
  std::ofstream(dir_.Sub("acl.json.tmp")) << only_stranger.dump(2);
  std::filesystem::rename(dir_.Sub("acl.json.tmp"), dir_.Sub("acl.json"));
  followers[0]->process->Signal(SIGHUP);
  EXPECT_TRUE(testing::WaitFor(
      [&] {
        return testing::ReadFile(dir_.Sub(followers[0]->name + ".log"))
                   .find("SIGHUP: reloaded ACL") != std::string::npos;
      },
      10s));
  auto revoked = Ctl("app", followers[0]->url(), {"cluster", "status", "--local"});
  EXPECT_EQ(revoked.exit_code, 6) << revoked.out << revoked.err;
  EXPECT_EQ(Ctl("stranger", followers[0]->url(), {"cluster", "status", "--local"}).exit_code, 0);
}

}  // namespace
}  // namespace txmq
