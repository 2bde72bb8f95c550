// txmqctl cluster status and the leader's per-replica gauges against a
// real three-node group and a real etcd (txmqd_group_fixture.h): every
// node, asked, names the leader, epoch and ISR etcd has; a follower killed
// with -9 shows up out of the ISR and behind, in the status and in the
// leader's /metrics.
#include <gtest/gtest.h>
#include <httplib.h>

#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "tests/cluster/txmqd_group_fixture.h"
#include "tests/testutil/prometheus_text.h"

namespace txmq {
namespace {

using namespace std::chrono_literals;
using testing::Node;

class TxmqdClusterStatus : public testing::TxmqdGroupFixture {
 protected:
  // Each node with --http on its own port, so its /metrics can be read.
  void StartAll(int min_isr) {
    for (Node& n : nodes_) {
      http_[n.name] = testing::FreeLoopbackPort();
      StartNode(n, min_isr, {"--http", "127.0.0.1:" + std::to_string(http_[n.name])});
    }
  }

  // `txmqctl --broker URL --json cluster status [extra]`; null on failure.
  nlohmann::json Status(const std::string& url, const std::vector<std::string>& extra = {}) {
    std::vector<std::string> argv = {testing::BinPath("txmqctl"),
                                     "--broker",
                                     url,
                                     "--timeout",
                                     "5s",
                                     "--json",
                                     "cluster",
                                     "status"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    auto r = testing::RunCommand(argv, "", 20s);
    last_err_ = r.err;
    if (r.exit_code != 0) return nullptr;
    auto j = nlohmann::json::parse(r.out, nullptr, false);
    return j.is_discarded() ? nlohmann::json(nullptr) : j;
  }

  // The group record as etcd has it (epoch 0 when unreadable).
  cluster::GroupState Record() {
    auto etcd = cluster::OpenEtcdCoordinator({.endpoints = {etcd_->endpoint()}});
    if (!etcd.ok()) return {};
    auto read = (*etcd)->Get(cluster::GroupStateKey(cluster_, "g"));
    if (!read.ok() || read->kvs.empty()) return {};
    auto state = cluster::DecodeGroupState(read->kvs.front().value);
    return state.ok() ? *state : cluster::GroupState{};
  }

  std::string Metrics(const Node& n) {
    httplib::Client client("127.0.0.1", http_[n.name]);
    client.set_connection_timeout(5);
    client.set_read_timeout(5);
    auto r = client.Get("/metrics");
    return r && r->status == 200 ? r->body : "";
  }

  static const nlohmann::json* ReplicaOf(const nlohmann::json& status, const std::string& node) {
    for (const auto& r : status["groups"][0]["replicas"]) {
      if (r["node"] == node) return &r;
    }
    return nullptr;
  }

  std::map<std::string, int> http_;
  std::string last_err_;
};

TEST_F(TxmqdClusterStatus, EveryNodeNamesTheLeaderAndAKilledFollowerLeavesTheIsr) {
  MakeNodes(3);
  StartAll(2);
  Node* leader = WaitForLeader();
  ASSERT_NE(leader, nullptr);
  SendAll(leader->url(), "s", 50);
  ASSERT_FALSE(HasFailure());
  ASSERT_TRUE(testing::WaitFor([&] { return Isr().size() == 3; }, 20s)) << "ISR never reached 3";
  const cluster::GroupState record = Record();
  ASSERT_EQ(record.leader, leader->name);

  // Asked at any node, the leader's view: same leader, epoch and ISR of 3.
  for (Node& n : nodes_) {
    nlohmann::json j;
    const bool agreed = testing::WaitFor(
        [&] {
          j = Status(n.url());
          return j.is_object() && j["groups"][0]["isr"].size() == 3;
        },
        10s);
    ASSERT_TRUE(agreed) << n.name << ": " << j.dump() << " " << last_err_;
    EXPECT_EQ(j["view"], "leader") << n.name;
    EXPECT_EQ(j["answered_by"], leader->name) << n.name;
    EXPECT_EQ(j["groups"][0]["leader"], record.leader) << n.name;
    EXPECT_EQ(j["groups"][0]["leader_url"], leader->url()) << n.name;
    EXPECT_EQ(j["groups"][0]["epoch"], record.epoch) << n.name;
    EXPECT_EQ(j["groups"][0]["replicas"].size(), 3u) << n.name;
  }
  // The table for people, asked at a follower.
  Node* follower = &nodes_[0] == leader ? &nodes_[1] : &nodes_[0];

  // A follower's /metrics: the store it keeps holds every entry it knows
  // committed (what a takeover would replay: nothing); a leader has none.
  std::optional<double> applied, committed;
  EXPECT_TRUE(testing::WaitFor(
      [&] {
        const auto m = testing::ParsePromText(Metrics(*follower));
        applied = m.Value("txmq_cluster_store_applied_index");
        committed = m.Value("txmq_cluster_follower_commit_index");
        return applied && committed && *committed > 0 && *applied == *committed;
      },
      10s))
      << "applied " << applied.value_or(-1) << ", committed " << committed.value_or(-1);
  EXPECT_FALSE(testing::ParsePromText(Metrics(*leader)).Value("txmq_cluster_store_applied_index"));
  // What the replica log takes on disk, on every node (it only grows).
  for (const Node* n : {leader, follower}) {
    const auto bytes = testing::ParsePromText(Metrics(*n)).Value("txmq_cluster_log_bytes");
    ASSERT_TRUE(bytes.has_value()) << n->name;
    EXPECT_GT(*bytes, 0) << n->name;
  }
  auto text = testing::RunCommand(
      {testing::BinPath("txmqctl"), "--broker", follower->url(), "cluster", "status"}, "", 20s);
  EXPECT_EQ(text.exit_code, 0) << text.err;
  EXPECT_NE(text.out.find("the leader's (" + leader->name + ")"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("NODE  ROLE      IN ISR  LOG INDEX  LAG  LAST CONTACT"),
            std::string::npos)
      << text.out;

  // A follower's own view (--local) agrees on leader, epoch and ISR and
  // knows no lag.
  nlohmann::json own;
  ASSERT_TRUE(testing::WaitFor(
      [&] {
        own = Status(follower->url(), {"--local"});
        return own.is_object() && own["groups"][0]["isr"].size() == 3;
      },
      10s))
      << own.dump() << " " << last_err_;
  EXPECT_EQ(own["view"], "follower");
  EXPECT_EQ(own["answered_by"], follower->name);
  EXPECT_EQ(own["groups"][0]["leader"], record.leader);
  EXPECT_EQ(own["groups"][0]["leader_url"], leader->url());
  EXPECT_EQ(own["groups"][0]["epoch"], record.epoch);
  EXPECT_TRUE(ReplicaOf(own, leader->name)->at("lag_entries").is_null());

  // kill -9 a follower: the leader takes it out of the ISR (after its
  // max lag, 3 s) and keeps reporting how far behind it is.
  Node* victim = nullptr;
  for (Node& n : nodes_) {
    if (&n != leader) victim = &n;
  }
  Kill9(*victim);
  SendAll(leader->url(), "t", 20);
  nlohmann::json after;
  const bool shrunk = testing::WaitFor(
      [&] {
        after = Status(leader->url());
        if (!after.is_object()) return false;
        const nlohmann::json* v = ReplicaOf(after, victim->name);
        return v != nullptr && !(*v)["in_isr"].get<bool>() && after["groups"][0]["isr"].size() == 2;
      },
      20s);
  ASSERT_TRUE(shrunk) << after.dump() << " " << last_err_;
  const cluster::GroupState now = Record();
  EXPECT_EQ(after["groups"][0]["leader"], now.leader);
  EXPECT_EQ(after["groups"][0]["epoch"], now.epoch);
  EXPECT_EQ(after["groups"][0]["isr"].get<std::vector<std::string>>(), now.isr);
  // Lag counts log entries (group-commit rounds), not messages: the 20
  // sends above are at least one.
  const nlohmann::json& v = *ReplicaOf(after, victim->name);
  const nlohmann::json& l = *ReplicaOf(after, leader->name);
  EXPECT_GE(v["lag_entries"].get<uint64_t>(), 1u) << v.dump();
  EXPECT_EQ(v["lag_entries"].get<uint64_t>(),
            l["log_index"].get<uint64_t>() - v["log_index"].get<uint64_t>())
      << after.dump();
  EXPECT_GE(v["last_contact_ms"].get<int64_t>(), 1000) << v.dump();

  // The same in the leader's /metrics.
  const auto m = testing::ParsePromText(Metrics(*leader));
  ASSERT_TRUE(m.errors.empty());
  const std::map<std::string, std::string> gone = {{"replica", victim->name}};
  EXPECT_GE(m.Value("txmq_replica_lag_entries", gone).value_or(-1), 1);
  EXPECT_EQ(m.Value("txmq_replica_in_isr", gone), 0);
  EXPECT_GE(m.Value("txmq_replica_last_contact_seconds", gone).value_or(-1), 1.0);
  const std::map<std::string, std::string> live = {{"replica", follower->name}};
  EXPECT_EQ(m.Value("txmq_replica_in_isr", live), 1);
  EXPECT_EQ(m.Value("txmq_replica_lag_entries", live), 0);
  EXPECT_LT(m.Value("txmq_replica_last_contact_seconds", live).value_or(99), 2.0);
}

TEST_F(TxmqdClusterStatus, AFollowerShowsItsOwnViewWhenTheLeaderIsGone) {
  MakeNodes(3);
  StartAll(1);
  Node* leader = WaitForLeader();
  ASSERT_NE(leader, nullptr);
  Node* follower = &nodes_[0] == leader ? &nodes_[1] : &nodes_[0];
  ASSERT_TRUE(testing::WaitFor(
      [&] {
        auto j = Status(follower->url(), {"--local"});
        return j.is_object() && j["groups"][0]["leader"] == leader->name;
      },
      10s));
  const std::string old = leader->name;
  Kill9(*leader);
  // Until etcd ends the dead leader's lease (a TTL), the follower still
  // names it: its own view, saying the leader could not be reached. After,
  // a new leader's view. Either way, never a claim that the dead node leads
  // from a node that did not check.
  auto j = Status(follower->url());
  ASSERT_TRUE(j.is_object()) << last_err_;
  RecordProperty("view", j["view"].get<std::string>());  // which branch ran
  if (j["view"] == "follower") {
    EXPECT_EQ(j["groups"][0]["leader"], old);
    EXPECT_NE(j["note"].get<std::string>().find("could not be reached"), std::string::npos)
        << j.dump();
  } else {
    EXPECT_EQ(j["view"], "leader") << j.dump();
    EXPECT_NE(j["answered_by"], old);
  }
}

TEST_F(TxmqdClusterStatus, ASingleBrokerSaysItIsNoMember) {
  testing::TempDir dir;
  const int port = testing::FreeLoopbackPort();
  const std::string url = "tcp://127.0.0.1:" + std::to_string(port);
  auto broker = testing::Process::Spawn({testing::BinPath("txmqd"), "--listen", url, "--data-dir",
                                         dir.Sub("data"), "--ready-file", dir.Sub("ready")},
                                        dir.Sub("log"));
  ASSERT_NE(broker, nullptr);
  ASSERT_TRUE(testing::WaitFor([&] { return std::filesystem::exists(dir.Sub("ready")); }, 20s));
  auto j = Status(url);
  ASSERT_TRUE(j.is_object()) << last_err_;
  EXPECT_EQ(j["member"], false);
  EXPECT_FALSE(j["note"].get<std::string>().empty());
  auto text = testing::RunCommand(
      {testing::BinPath("txmqctl"), "--broker", url, "cluster", "status"}, "", 20s);
  EXPECT_EQ(text.exit_code, 0) << text.err;
  EXPECT_NE(text.out.find("not a member of a replicated group"), std::string::npos) << text.out;
}

}  // namespace
}  // namespace txmq
