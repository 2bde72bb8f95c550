// A leader and two followers in one process, over the in-process transport
// (every frame goes through the wire codec), on file logs whose file layer
// can lose power (tests/testutil/fault_fs.h). Time is a manual clock; every
// pump loop is bounded. After every pump the harness checks that the
// commit index never regresses and never passes what every ISR member has
// fsynced.
#include <gtest/gtest.h>

#include <map>

#include "broker/src/cluster/file_replica_log.h"
#include "broker/src/cluster/inproc_transport.h"
#include "broker/src/cluster/replica_follower.h"
#include "broker/src/cluster/replica_health.h"
#include "broker/src/cluster/replication_leader.h"
#include "tests/testutil/fault_fs.h"
#include "tests/testutil/testutil.h"

namespace txmq::cluster {
namespace {

using namespace std::chrono_literals;
using testing::FaultFileSystem;
using testing::TempDir;

struct Node {
  std::unique_ptr<FaultFileSystem> fs = std::make_unique<FaultFileSystem>();
  std::unique_ptr<FileReplicaLog> log;
  std::unique_ptr<ReplicaFollower> follower;
  std::unique_ptr<ReplicationLeader> leader;
};

class Group {
 public:
  Group() {
    for (const char* n : {"a", "b", "c"}) {
      net_.Attach(n);
      Open(n);
    }
  }

  Node& operator[](const std::string& name) { return nodes_.at(name); }

  void Open(const std::string& name) {
    Node& n = nodes_[name];
    n.leader.reset();
    n.follower.reset();
    n.log.reset();
    auto log = FileReplicaLog::Open({dir_.Sub(name), 1 << 16, n.fs.get()});
    ASSERT_TRUE(log.ok()) << log.status().message();
    n.log = std::move(*log);
    n.follower = std::make_unique<ReplicaFollower>(name, *n.log);
  }

  // `name` leads `epoch` with the other two as followers.
  ReplicationLeader& Lead(const std::string& name, int64_t epoch,
                          std::vector<std::string> isr = {"a", "b", "c"}, size_t min_isr = 2) {
    Node& n = nodes_.at(name);
    ReplicationLeaderOptions o;
    o.node = name;
    for (const auto& [other, _] : nodes_) {
      if (other != name) o.followers.push_back(other);
    }
    o.min_isr = min_isr;
    o.max_batch_entries = 16;
    auto leader = ReplicationLeader::Start(*n.log, o, epoch, std::move(isr), 0, now_);
    EXPECT_TRUE(leader.ok()) << leader.status().message();
    n.follower.reset();
    n.leader = std::move(*leader);
    leader_ = name;
    last_commit_ = n.leader->commit_index();
    return *n.leader;
  }

  // Leader and followers exchange frames until nothing moves (at most
  // `rounds` exchanges), 10 ms of manual time per exchange.
  void Pump(int rounds = 100) {
    for (int i = 0; i < rounds; ++i) {
      size_t moved = 0;
      for (auto& [name, n] : nodes_) {
        ReplicationTransport& t = net_.Attach(name);
        if (n.leader) moved += PumpLeader(t, *n.leader, now_);
        if (n.follower) moved += ServeFollower(t, *n.follower);
      }
      CheckCommit();
      now_ += 10ms;
      if (moved == 0) return;
    }
  }

  // Appends `n` rounds on the leader, syncs it, pumps.
  std::vector<uint64_t> Write(int count) {
    std::vector<uint64_t> indexes;
    ReplicationLeader& l = *nodes_.at(leader_).leader;
    for (int i = 0; i < count; ++i) {
      auto index = l.Append("round-" + std::to_string(++written_));
      EXPECT_TRUE(index.ok()) << index.status().message();
      if (index.ok()) indexes.push_back(*index);
    }
    EXPECT_TRUE(l.SyncLocal().ok());
    Pump();
    return indexes;
  }

  // The commit index never regresses and every ISR member has fsynced it.
  void CheckCommit() {
    Node& l = nodes_.at(leader_);
    if (!l.leader || l.leader->stepped_down()) return;
    const uint64_t c = l.leader->commit_index();
    EXPECT_GE(c, last_commit_) << "the commit index regressed";
    last_commit_ = c;
    EXPECT_LE(c, l.log->durable().index);
    for (const auto& [name, n] : nodes_) {
      if (name == leader_ || !isr_of_check_.count(name)) continue;
      // Counted entries are durable on the follower and are the leader's.
      EXPECT_LE(c, n.log->durable().index) << name;
      if (c > 0 && c <= n.log->last().index) {
        EXPECT_EQ(n.log->CrcAt(c), l.log->CrcAt(c)) << name;
      }
    }
  }

  // Power loss on `name`: what it did not fsync is gone; it restarts as a
  // follower on a fresh file layer.
  void PowerLoss(const std::string& name) {
    Node& n = nodes_.at(name);
    n.fs->PowerOff();
    n.leader.reset();
    n.follower.reset();
    n.log.reset();
    n.fs->DropUnsynced();
    n.fs = std::make_unique<FaultFileSystem>();
    Open(name);
  }

  void Cut(const std::string& a, const std::string& b, bool cut) { net_.Cut(a, b, cut); }
  void Pass(std::chrono::milliseconds d) { now_ += d; }
  ReplicationClock::time_point now() const { return now_; }
  // Members whose fsync the commit check holds the leader to.
  std::set<std::string> isr_of_check_{"b", "c"};

 private:
  TempDir dir_;
  InProcNetwork net_;
  std::map<std::string, Node> nodes_;
  std::string leader_;
  ReplicationClock::time_point now_{};
  uint64_t last_commit_ = 0;
  int written_ = 0;
};

// Every entry of `a`'s log is in `b`'s, the same.
void ExpectSameLog(const ReplicaLog& a, const ReplicaLog& b) {
  ASSERT_EQ(a.last(), b.last());
  for (uint64_t i = 1; i <= a.last().index; ++i) EXPECT_EQ(*a.Read(i), *b.Read(i)) << i;
}

TEST(Replication, CommitsOnlyWhatEveryIsrMemberFsynced) {
  Group g;
  ReplicationLeader& l = g.Lead("a", 1);
  EXPECT_EQ(l.epoch_start(), 1u);
  std::vector<uint64_t> acked;
  for (int round = 0; round < 20; ++round) {
    for (uint64_t i : g.Write(5)) {
      l.WhenCommitted(i, [&acked, i](const Status& s) {
        EXPECT_TRUE(s.ok());
        acked.push_back(i);
      });
    }
  }
  g.Pump();
  EXPECT_EQ(l.commit_index(), 101u);
  ASSERT_EQ(acked.size(), 100u);
  EXPECT_TRUE(std::is_sorted(acked.begin(), acked.end()));
  ExpectSameLog(*g["a"].log, *g["b"].log);
  ExpectSameLog(*g["a"].log, *g["c"].log);
  EXPECT_EQ(g["b"].follower->commit_index(), 101u);

  // Appended but not synced on the leader: followers have it, it does not
  // count.
  auto index = l.Append("unsynced on the leader");
  ASSERT_TRUE(index.ok());
  g.Pump();
  EXPECT_EQ(g["b"].log->durable().index, *index);
  EXPECT_EQ(l.commit_index(), 101u);
  ASSERT_TRUE(l.SyncLocal().ok());
  EXPECT_EQ(l.commit_index(), *index);

  // One ISR member cannot fsync: nothing past what it holds commits.
  g["c"].fs->FailNextSyncs(3);
  const uint64_t before = l.commit_index();
  bool acked_late = false;
  const uint64_t late = g.Write(1).front();
  l.WhenCommitted(late, [&](const Status& s) { acked_late = s.ok(); });
  EXPECT_EQ(l.commit_index(), before);
  EXPECT_FALSE(acked_late);
  EXPECT_EQ(g["b"].log->durable().index, late);
  // The resend after the failures goes through.
  for (int i = 0; i < 10 && l.commit_index() < late; ++i) {
    g.Pass(600ms);
    g.Pump();
  }
  EXPECT_EQ(l.commit_index(), late);
  EXPECT_TRUE(acked_late);
}

TEST(Replication, NothingCommitsBelowMinIsr) {
  Group g;
  ReplicationLeader& l = g.Lead("a", 1, {"a"}, 2);
  g.Write(3);
  EXPECT_EQ(l.commit_index(), 0u);
  l.SetIsr({"a", "b"});
  EXPECT_EQ(l.commit_index(), 4u);
}

TEST(Replication, LaggingFollowerIsShrunkThenCaughtUpAndRejoins) {
  Group g;
  ReplicationLeader& l = g.Lead("a", 1);
  g.Write(10);
  EXPECT_EQ(l.commit_index(), 11u);
  g.Cut("a", "c", true);
  g.isr_of_check_ = {"b"};
  g.Write(100);
  EXPECT_EQ(l.commit_index(), 11u);  // c is in the ISR and has none of it
  g.Pass(5s);
  EXPECT_EQ(l.Lagging(g.now(), 3s), std::vector<std::string>{"c"});
  l.SetIsr({"a", "b"});  // what GroupMember::ShrinkIsr wrote
  EXPECT_EQ(l.commit_index(), 111u);
  EXPECT_FALSE(l.HoldsCommitted("c"));

  g.Cut("a", "c", false);
  g.Pass(1s);  // the lost request is resent
  g.Pump(200);
  ExpectSameLog(*g["a"].log, *g["c"].log);
  EXPECT_TRUE(l.HoldsCommitted("c"));
  EXPECT_TRUE(l.Lagging(g.now(), 3s).empty());
  l.SetIsr({"a", "b", "c"});
  g.isr_of_check_ = {"b", "c"};
  g.Write(5);
  EXPECT_EQ(l.commit_index(), 116u);
}

TEST(Replication, LeaderReportsEachFollowersMatchLagAndLastAnswer) {
  Group g;
  ReplicationLeader& l = g.Lead("a", 1);
  for (const ReplicaLag& r : l.Replicas(g.now())) {
    EXPECT_FALSE(r.since_answer.has_value()) << r.node << " has not answered yet";
  }
  g.Write(10);
  auto caught_up = l.Replicas(g.now());
  ASSERT_EQ(caught_up.size(), 2u);
  for (const ReplicaLag& r : caught_up) {
    EXPECT_TRUE(r.in_isr) << r.node;
    EXPECT_EQ(r.match, 11u) << r.node;
    EXPECT_EQ(r.lag, 0u) << r.node;
    ASSERT_TRUE(r.since_answer.has_value()) << r.node;
    EXPECT_LT(*r.since_answer, 100ms) << r.node;
  }

  // c is cut off: its match stays, the lag grows with every entry, and the
  // time since it answered grows with the clock.
  g.Cut("a", "c", true);
  g.isr_of_check_ = {"b"};
  g.Write(7);
  g.Pass(2s);
  g.Pump();
  l.SetIsr({"a", "b"});
  auto lagging = l.Replicas(g.now());
  ASSERT_EQ(lagging[1].node, "c");
  EXPECT_FALSE(lagging[1].in_isr);
  EXPECT_EQ(lagging[1].match, 11u);
  EXPECT_EQ(lagging[1].lag, 7u);
  EXPECT_GE(*lagging[1].since_answer, 2s);
  EXPECT_EQ(lagging[0].lag, 0u);
  EXPECT_LT(*lagging[0].since_answer, 300ms) << "b answers heartbeats";

  // What txmqd publishes: every member, the leader with its own log.
  GroupState view{1, "a", {"a", "b"}};
  auto health = DescribeReplicas("a", {"b", "c"}, view, 18, &l, g.now());
  ASSERT_EQ(health.size(), 3u);
  EXPECT_TRUE(health[0].leader);
  EXPECT_EQ(health[0].log_index, 18u);
  EXPECT_EQ(health[0].last_contact_ms, -1);
  EXPECT_EQ(health[2].node, "c");
  EXPECT_EQ(health[2].lag_entries, 7u);
  EXPECT_GE(health[2].last_contact_ms, 2000);
  // A follower's own view: its log, nothing about its peers.
  auto seen = DescribeReplicas("b", {"a", "c"}, view, 18, nullptr, g.now());
  EXPECT_FALSE(seen[0].progress_known);
  EXPECT_TRUE(seen[1].progress_known);
  EXPECT_EQ(seen[1].log_index, 18u);
}

TEST(Replication, DivergentSuffixIsTruncatedAtTheEpochBoundary) {
  Group g;
  g.Lead("a", 1);
  g.Write(10);  // 1..11 committed everywhere
  // a keeps writing; only b hears it; then a dies.
  g.Cut("a", "c", true);
  g.isr_of_check_ = {};
  g.Write(5);  // 12..16, epoch 1, on a and b only
  EXPECT_EQ(g["b"].log->last().index, 16u);
  EXPECT_EQ(g["c"].log->last().index, 11u);
  g.PowerLoss("a");
  g.Cut("a", "c", false);

  // c is elected (it is in the ISR) and never had 12..16.
  g.isr_of_check_ = {"a", "b"};
  ReplicationLeader& c = g.Lead("c", 2);
  EXPECT_EQ(c.epoch_start(), 12u);
  g.Write(3);  // 13..15 of epoch 2
  EXPECT_EQ(c.commit_index(), 15u);
  for (const char* f : {"a", "b"}) {
    ExpectSameLog(*g["c"].log, *g[f].log);
    EXPECT_EQ(g[f].log->epochs().starts(), (std::map<int64_t, uint64_t>{{1, 1}, {2, 12}})) << f;
    EXPECT_EQ(g[f].log->Read(12)->epoch, 2) << f;
  }
  // The truncation is durable: b restarts with c's log.
  g.PowerLoss("b");
  ExpectSameLog(*g["c"].log, *g["b"].log);
}

TEST(Replication, SuffixesOfTwoStaleEpochsAreTruncated) {
  Group g;
  g.Lead("a", 1);
  g.Write(4);   // 1..5 everywhere
  g.Open("a");  // a follows from now on
  // Epoch 2 (leader b) writes 6..9, heard by a only; epoch 3 (leader a)
  // writes 10..12, heard by nobody; then c leads epoch 4 after 5.
  g.Cut("b", "c", true);
  g.Cut("a", "c", true);
  g.isr_of_check_ = {};
  g.Lead("b", 2, {"b"}, 1);
  g.Write(3);
  g.Open("b");
  g.Cut("a", "b", true);
  g.Lead("a", 3, {"a"}, 1);
  g.Write(2);
  EXPECT_EQ(g["a"].log->epochs().starts(), (std::map<int64_t, uint64_t>{{1, 1}, {2, 6}, {3, 10}}));
  g.Open("a");
  g.Cut("a", "b", false);
  g.Cut("a", "c", false);
  g.Cut("b", "c", false);

  g.isr_of_check_ = {"a", "b"};
  ReplicationLeader& c = g.Lead("c", 4);
  g.Write(2);
  EXPECT_EQ(c.commit_index(), 8u);
  ExpectSameLog(*g["c"].log, *g["a"].log);
  ExpectSameLog(*g["c"].log, *g["b"].log);
}

TEST(Replication, StaleLeaderIsRefusedAndChangesNothing) {
  Group g;
  ReplicationLeader& a = g.Lead("a", 1);
  g.Write(5);
  // b leads epoch 2 while a, cut off from everyone, still believes it leads.
  g.Cut("a", "b", true);
  g.Cut("a", "c", true);
  g.Lead("b", 2);
  g.Write(2);
  const EntryRef c_before = g["c"].log->last();

  auto zombie = a.Append("a zombie write");
  ASSERT_TRUE(zombie.ok());
  ASSERT_TRUE(a.SyncLocal().ok());
  Status outcome;
  bool called = false;
  a.WhenCommitted(*zombie, [&](const Status& s) {
    called = true;
    outcome = s;
  });
  g.Cut("a", "c", false);
  g.Pump();
  EXPECT_TRUE(a.superseded());
  EXPECT_TRUE(called);
  EXPECT_EQ(outcome.code(), StatusCode::kUnavailable);
  EXPECT_EQ(g["c"].log->last(), c_before);
  EXPECT_EQ(g["c"].log->highest_epoch(), 2);
  EXPECT_LT(a.commit_index(), *zombie);
}

TEST(Replication, FollowerPowerLossLosesNothingCounted) {
  Group g;
  ReplicationLeader& l = g.Lead("a", 1);
  g.Write(30);
  // b takes more entries into its page cache but cannot fsync them, then
  // loses power.
  g["b"].fs->FailSyncs();
  g.Write(10);
  const uint64_t counted = l.progress("b")->match;
  EXPECT_EQ(counted, 31u);
  EXPECT_EQ(l.commit_index(), 31u);
  EXPECT_GT(g["b"].fs->unsynced_bytes(), 0u);
  g.PowerLoss("b");
  EXPECT_GE(g["b"].log->last().index, counted);
  for (uint64_t i = 1; i <= counted; ++i) EXPECT_EQ(g["b"].log->CrcAt(i), g["a"].log->CrcAt(i));
  g.Pass(1s);
  g.Pump();
  EXPECT_EQ(l.commit_index(), 41u);
  ExpectSameLog(*g["a"].log, *g["b"].log);
}

TEST(Replication, LeaderWillNotStartInAnEpochItsLogHasPassed) {
  Group g;
  g.Lead("a", 3);
  g.Open("a");
  ReplicationLeaderOptions o;
  o.node = "a";
  auto again = ReplicationLeader::Start(*g["a"].log, o, 2, {"a"}, 0, g.now());
  EXPECT_EQ(again.status().code(), StatusCode::kAborted);
}

TEST(Replication, FollowersAtOnePointAreSentOneFrame) {
  Group g;
  ReplicationLeader& l = g.Lead("a", 1);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(l.Append("round " + std::to_string(i)).ok());
  ASSERT_TRUE(l.SyncLocal().ok());
  auto out = l.Poll(g.now());
  ASSERT_EQ(out.size(), 2u);
  // Both followers start at the epoch-start entry: the same append, one
  // encoding, and what it carries is the log's.
  EXPECT_EQ(out[0].frame, out[1].frame);
  auto m = DecodeReplicationMessage(*out[0].frame);
  ASSERT_TRUE(m.ok()) << m.status().message();
  const auto& a = std::get<AppendRequest>(m->body);
  ASSERT_EQ(a.entries.size(), 4u);
  for (const ReplicaEntry& e : a.entries) EXPECT_EQ(e, *g["a"].log->Read(e.index));

  // Once b is further along than c, each gets its own.
  // (Those frames were never delivered: sent again after resend_after.)
  g.Cut("a", "c", true);
  g.Pass(1s);
  g.Pump();
  ASSERT_EQ(g["b"].log->durable().index, 4u);
  ASSERT_TRUE(l.Append("only b hears of it").ok());
  ASSERT_TRUE(l.SyncLocal().ok());
  g.Pass(1s);  // c's request is resent
  out = l.Poll(g.now());
  ASSERT_EQ(out.size(), 2u);
  EXPECT_NE(out[0].frame, out[1].frame);
  for (const Outgoing& o : out) {
    auto sent = DecodeReplicationMessage(*o.frame);
    ASSERT_TRUE(sent.ok());
    EXPECT_EQ(std::get<AppendRequest>(sent->body).entries.size(), o.to == "b" ? 1u : 5u) << o.to;
  }
}

TEST(ReplicationMessages, DecodesAFrameThatIsNotWordAligned) {
  ReplicationMessage m{7, AppendRequest{4, "a", {3, 99}, {{4, 4, 5, std::string(1000, 'p')}}, 2}};
  const std::string bytes = " " + EncodeReplicationMessage(m);
  auto back = DecodeReplicationMessage(std::string_view(bytes).substr(1));
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_EQ(std::get<AppendRequest>(back->body).entries.at(0).payload, std::string(1000, 'p'));
}

TEST(ReplicationMessages, RoundTrip) {
  ReplicationMessage m{7, AppendRequest{4, "a", {3, 99}, {{4, 4, 5, std::string("x\0y", 3)}}, 2}};
  auto back = DecodeReplicationMessage(EncodeReplicationMessage(m));
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->request_id, 7u);
  const auto& a = std::get<AppendRequest>(back->body);
  EXPECT_EQ(a.prev, (EntryRef{3, 99}));
  EXPECT_EQ(a.entries.at(0).payload, std::string("x\0y", 3));
  EXPECT_EQ(a.leader_commit, 2u);

  AppendAnswer ans{9, "b", Outcome::kDivergent, {5, 6}, 2, 3, {4, 8}, "why"};
  back = DecodeReplicationMessage(EncodeReplicationMessage({1, ans}));
  ASSERT_TRUE(back.ok());
  const auto& b = std::get<AppendAnswer>(back->body);
  EXPECT_EQ(b.outcome, Outcome::kDivergent);
  EXPECT_EQ(b.epoch_end, (EntryRef{4, 8}));
  EXPECT_EQ(b.reason, "why");
  EXPECT_EQ(DecodeReplicationMessage("1234567").status().code(), StatusCode::kCorruption);
  EXPECT_EQ(DecodeReplicationMessage(std::string(64, '\xff')).status().code(),
            StatusCode::kCorruption);
}

}  // namespace
}  // namespace txmq::cluster
