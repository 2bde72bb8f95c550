// The ZeroMQ replication transport on real loopback sockets: a leader and
// two followers as three endpoints in this process, each with its own
// context, file log (under a fault layer, to fail a follower's fsync) and
// free port. One test thread drives all three, as three replication
// threads would; time is the real clock and every wait is bounded.
// After every step the harness checks that the leader's commit index never
// passes what a checked follower has fsynced.
#include <gtest/gtest.h>
#include <unistd.h>

#include <functional>
#include <map>
#include <set>
#include <zmq.hpp>

#include "broker/src/cluster/file_replica_log.h"
#include "broker/src/cluster/replica_follower.h"
#include "broker/src/cluster/replication_leader.h"
#include "broker/src/cluster/zmq_transport.h"
#include "protocol/src/curve_keys.h"
#include "tests/testutil/fault_fs.h"
#include "tests/testutil/testutil.h"

namespace txmq::cluster {
namespace {

using namespace std::chrono_literals;
using testing::FaultFileSystem;
using testing::FreeLoopbackPort;
using testing::TempDir;

struct Node {
  std::string endpoint;
  curve::KeyPair keys;
  std::unique_ptr<FaultFileSystem> fs = std::make_unique<FaultFileSystem>();
  std::unique_ptr<FileReplicaLog> log;
  std::unique_ptr<ZmqReplicationTransport> transport;
  std::unique_ptr<ReplicaFollower> follower;
  std::unique_ptr<ReplicationLeader> leader;
  bool serving = true;  // false: its socket is open, nobody reads it
};

class Cluster {
 public:
  explicit Cluster(bool curve = false) : curve_(curve) {
    for (const char* n : {"a", "b", "c"}) {
      Node& node = nodes_[n];
      node.endpoint = "tcp://127.0.0.1:" + std::to_string(FreeLoopbackPort());
      if (curve_) node.keys = *curve::NewKeyPair();
    }
    for (const char* n : {"a", "b", "c"}) Open(n);
  }

  Node& operator[](const std::string& name) { return nodes_.at(name); }

  ZmqTransportOptions OptionsOf(const std::string& name) const {
    ZmqTransportOptions o;
    o.node = name;
    o.bind = nodes_.at(name).endpoint;
    for (const auto& [other, n] : nodes_) {
      if (other != name) o.peers.push_back({other, n.endpoint, n.keys.public_key});
    }
    if (curve_) o.secret_key = nodes_.at(name).keys.secret_key;
    return o;
  }

  void Open(const std::string& name) {
    Node& n = nodes_.at(name);
    auto log = FileReplicaLog::Open({dir_.Sub(name), 1 << 16, n.fs.get()});
    ASSERT_TRUE(log.ok()) << log.status().message();
    n.log = std::move(*log);
    auto t = ZmqReplicationTransport::Open(OptionsOf(name));
    ASSERT_TRUE(t.ok()) << t.status().message();
    n.transport = std::move(*t);
    n.follower = std::make_unique<ReplicaFollower>(name, *n.log);
  }

  // The node dies: its objects are destroyed, its sockets closed.
  void Kill(const std::string& name) {
    Node& n = nodes_.at(name);
    n.leader.reset();
    n.follower.reset();
    n.transport.reset();
    n.log.reset();
  }

  ReplicationLeader& Lead(const std::string& name, std::vector<std::string> isr = {"a", "b", "c"},
                          size_t min_isr = 2) {
    Node& n = nodes_.at(name);
    ReplicationLeaderOptions o;
    o.node = name;
    for (const auto& [other, _] : nodes_) {
      if (other != name) o.followers.push_back(other);
    }
    o.min_isr = min_isr;
    o.max_batch_entries = 16;
    o.resend_after = 200ms;
    o.heartbeat_every = 50ms;
    auto leader = ReplicationLeader::Start(*n.log, o, 1, std::move(isr), 0, Now());
    EXPECT_TRUE(leader.ok()) << leader.status().message();
    n.follower.reset();
    n.leader = std::move(*leader);
    leader_ = name;
    return *n.leader;
  }

  // Appends `count` rounds on the leader and syncs them; returns the last
  // index.
  uint64_t Write(int count) {
    ReplicationLeader& l = *nodes_.at(leader_).leader;
    uint64_t last = 0;
    for (int i = 0; i < count; ++i) {
      auto index = l.Append("round-" + std::to_string(++written_));
      EXPECT_TRUE(index.ok()) << index.status().message();
      last = index.ok() ? *index : 0;
    }
    EXPECT_TRUE(l.SyncLocal().ok());
    return last;
  }

  // Moves traffic until `done` holds; false if `timeout` passed first.
  bool PumpUntil(const std::function<bool()>& done, std::chrono::milliseconds timeout = 3s) {
    const auto deadline = Now() + timeout;
    while (!done()) {
      if (Now() >= deadline) return false;
      Step();
    }
    return true;
  }
  // Moves traffic for `d`, whatever happens.
  void PumpFor(std::chrono::milliseconds d) {
    PumpUntil([] { return false; }, d);
  }

  // Followers the commit check holds the leader to.
  std::set<std::string> checked_{"b", "c"};

 private:
  static ReplicationClock::time_point Now() { return ReplicationClock::now(); }

  void Step() {
    size_t moved = 0;
    for (auto& [name, n] : nodes_) {
      if (!n.transport) continue;
      if (n.leader) moved += PumpLeader(*n.transport, *n.leader, Now());
      if (n.follower && n.serving) moved += ServeFollower(*n.transport, *n.follower);
    }
    CheckCommit();
    if (moved == 0) nodes_.at(leader_).transport->Wait(2ms);
  }

  void CheckCommit() {
    const Node& l = nodes_.at(leader_);
    if (!l.leader) return;
    const uint64_t c = l.leader->commit_index();
    EXPECT_LE(c, l.log->durable().index);
    for (const std::string& f : checked_) {
      const Node& n = nodes_.at(f);
      if (n.log) {
        EXPECT_LE(c, n.log->durable().index) << f << " has not fsynced the commit index";
      }
    }
  }

  const bool curve_;
  TempDir dir_;
  std::map<std::string, Node> nodes_;
  std::string leader_;
  int written_ = 0;
};

void ExpectSameLog(const ReplicaLog& a, const ReplicaLog& b) {
  ASSERT_EQ(a.last(), b.last());
  for (uint64_t i = 1; i <= a.last().index; ++i) EXPECT_EQ(*a.Read(i), *b.Read(i)) << i;
}

// A raw DEALER toward `endpoint`, as a stranger on the network would use.
zmq::socket_t RawDealer(zmq::context_t& ctx, const std::string& endpoint, const std::string& id,
                        const curve::KeyPair* keys = nullptr, const std::string& server_key = "") {
  zmq::socket_t s(ctx, zmq::socket_type::dealer);
  s.set(zmq::sockopt::linger, 0);
  s.set(zmq::sockopt::routing_id, id);
  if (keys != nullptr) {
    s.set(zmq::sockopt::curve_serverkey, server_key);
    s.set(zmq::sockopt::curve_publickey, keys->public_key);
    s.set(zmq::sockopt::curve_secretkey, keys->secret_key);
  }
  s.connect(endpoint);
  return s;
}

TEST(ZmqReplication, CommitsOnlyWhatBothFollowersFsynced) {
  Cluster g;
  ReplicationLeader& l = g.Lead("a", {"a", "b", "c"}, 3);
  uint64_t last = 0;
  for (int round = 0; round < 20; ++round) {
    last = g.Write(5);
    ASSERT_TRUE(g.PumpUntil([&] { return l.commit_index() == last; })) << round;
  }
  EXPECT_EQ(last, 101u);
  ExpectSameLog(*g["a"].log, *g["b"].log);
  ExpectSameLog(*g["a"].log, *g["c"].log);

  // c cannot fsync for a while: b holds the round, nothing commits past c.
  g["c"].fs->FailNextSyncs(2);
  last = g.Write(1);
  ASSERT_TRUE(g.PumpUntil([&] { return g["b"].log->durable().index == last; }));
  EXPECT_LT(l.commit_index(), last);
  // The leader's resends get through once c's disk works again.
  ASSERT_TRUE(g.PumpUntil([&] { return l.commit_index() == last; }));
  EXPECT_EQ(g["c"].log->durable().index, last);
}

TEST(ZmqReplication, FollowerRestartedOnTheSamePortCatchesUp) {
  Cluster g;
  ReplicationLeader& l = g.Lead("a");
  uint64_t last = g.Write(10);
  ASSERT_TRUE(g.PumpUntil([&] { return l.commit_index() == last; }));

  g.Kill("c");
  g.checked_ = {"b"};
  last = g.Write(20);
  g.PumpFor(300ms);
  EXPECT_LT(l.commit_index(), last);  // c is in the ISR and gets nothing
  EXPECT_GT(g["a"].transport->dropped(), 0u) << "sends to a dead peer fail at once";

  g.Open("c");  // same endpoint, same log directory
  g.checked_ = {"b", "c"};
  ASSERT_TRUE(g.PumpUntil([&] { return l.commit_index() == last; }));
  ExpectSameLog(*g["a"].log, *g["c"].log);
}

TEST(ZmqReplication, SilentFollowerDoesNotHoldUpTheOther) {
  Cluster g;
  g["c"].serving = false;  // its socket takes frames; nobody answers
  g.checked_ = {"b"};
  ReplicationLeader& l = g.Lead("a");
  const uint64_t last = g.Write(10);
  ASSERT_TRUE(g.PumpUntil([&] { return g["b"].log->durable().index == last; }));
  EXPECT_LT(l.commit_index(), last);  // c is in the ISR

  // Frames toward c pile up only to the high-water marks, and Send never
  // waits: most of a flood is refused at once.
  const auto start = std::chrono::steady_clock::now();
  size_t refused = 0;
  for (int i = 0; i < 2000; ++i) {
    if (!g["a"].transport->Send("c", std::string(64 << 10, 'x')).ok()) ++refused;
  }
  EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);
  EXPECT_GT(refused, 1000u);

  // The leader names c lagging; with c out of the ISR (what
  // GroupMember::ShrinkIsr would write) b alone carries the commit.
  ASSERT_TRUE(g.PumpUntil(
      [&] { return l.Lagging(ReplicationClock::now(), 300ms) == std::vector<std::string>{"c"}; }));
  l.SetIsr({"a", "b"});
  EXPECT_EQ(l.commit_index(), last);
  const uint64_t more = g.Write(10);
  ASSERT_TRUE(g.PumpUntil([&] { return l.commit_index() == more; }));
  EXPECT_LT(g["c"].log->last().index, more);
}

TEST(ZmqReplication, GarbageOnTheRouterIsDroppedAndServingGoesOn) {
  Cluster g;
  ReplicationLeader& l = g.Lead("a");
  uint64_t last = g.Write(3);
  ASSERT_TRUE(g.PumpUntil([&] { return l.commit_index() == last; }));

  zmq::context_t ctx(1);
  // A name the group does not have, and a routing id of the wrong shape:
  // refused by the transport.
  zmq::socket_t stranger = RawDealer(ctx, g["b"].endpoint, "mallory/1");
  // A member's name (plaintext trusts it) with bytes that do not decode:
  // dropped by ServeFollower. Then a three-part frame: refused.
  zmq::socket_t shapeless = RawDealer(ctx, g["b"].endpoint, "c");
  zmq::socket_t spoof = RawDealer(ctx, g["b"].endpoint, "c/1");
  ASSERT_TRUE(g.PumpUntil([&] {
    (void)stranger.send(zmq::str_buffer("hello"), zmq::send_flags::dontwait);
    (void)shapeless.send(zmq::str_buffer("hello"), zmq::send_flags::dontwait);
    (void)spoof.send(zmq::buffer(std::string(100, '\xff')), zmq::send_flags::dontwait);
    (void)spoof.send(zmq::str_buffer("x"), zmq::send_flags::sndmore | zmq::send_flags::dontwait);
    (void)spoof.send(zmq::str_buffer("y"), zmq::send_flags::sndmore | zmq::send_flags::dontwait);
    (void)spoof.send(zmq::str_buffer("z"), zmq::send_flags::dontwait);
    return g["b"].transport->refused() >= 3;
  }));
  last = g.Write(5);
  ASSERT_TRUE(g.PumpUntil([&] { return l.commit_index() == last; }));
  ExpectSameLog(*g["a"].log, *g["b"].log);
}

TEST(ZmqReplication, CurveLinksAdmitOnlyListedKeysUnderTheirOwnNames) {
  if (!curve::Available()) GTEST_SKIP() << "libzmq without CURVE";
  Cluster g(/*curve=*/true);
  ReplicationLeader& l = g.Lead("a");
  uint64_t last = g.Write(10);
  ASSERT_TRUE(g.PumpUntil([&] { return l.commit_index() == last; }));

  // A well-formed request of a higher epoch would be acted on (the
  // follower persists the epoch): none may reach b.
  const EntryRef b_last = g["b"].log->last();
  const std::string forged = EncodeReplicationMessage({1, AppendRequest{99, "a", b_last, {}, 0}});
  zmq::context_t ctx(1);
  auto unlisted = *curve::NewKeyPair();
  zmq::socket_t intruder =
      RawDealer(ctx, g["b"].endpoint, "a/1", &unlisted, g["b"].keys.public_key);
  zmq::socket_t plain = RawDealer(ctx, g["b"].endpoint, "a/2");
  // c's own key, speaking as a: admitted, but its frames are refused.
  zmq::socket_t impostor =
      RawDealer(ctx, g["b"].endpoint, "a/3", &g["c"].keys, g["b"].keys.public_key);
  ASSERT_TRUE(g.PumpUntil([&] {
    for (zmq::socket_t* s : {&intruder, &plain, &impostor}) {
      (void)s->send(zmq::buffer(forged), zmq::send_flags::dontwait);
    }
    return g["b"].transport->denied_connections() >= 1 && g["b"].transport->refused() >= 1;
  }));
  g.PumpFor(100ms);
  EXPECT_EQ(g["b"].log->highest_epoch(), 1);
  EXPECT_EQ(g["b"].log->last(), b_last);

  // The real a's link to b was not disturbed by any of them.
  last = g.Write(5);
  ASSERT_TRUE(g.PumpUntil([&] { return l.commit_index() == last; }, 1s));
  ExpectSameLog(*g["a"].log, *g["b"].log);
}

TEST(ZmqReplication, OpenRefusesBadOptions) {
  ZmqTransportOptions o;
  o.node = "a";
  o.bind = "tcp://127.0.0.1:*";
  o.peers = {{"b", "tcp://127.0.0.1:1", ""}, {"b", "tcp://127.0.0.1:2", ""}};
  EXPECT_EQ(ZmqReplicationTransport::Open(o).status().code(), StatusCode::kInvalidArgument);
  o.peers = {{"b/1", "tcp://127.0.0.1:1", ""}};  // '/' ends the name in a routing id
  EXPECT_EQ(ZmqReplicationTransport::Open(o).status().code(), StatusCode::kInvalidArgument);
  if (!curve::Available()) return;
  o.peers = {{"b", "tcp://127.0.0.1:1", ""}};
  o.secret_key = curve::NewKeyPair()->secret_key;
  auto missing_key = ZmqReplicationTransport::Open(o);
  EXPECT_EQ(missing_key.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(missing_key.status().message().find("peers[b].public_key"), std::string::npos)
      << missing_key.status().message();
}

}  // namespace
}  // namespace txmq::cluster
