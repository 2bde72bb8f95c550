// GroupMember on the in-memory coordinator with a manual clock: election,
// epochs, the ISR and the node-side fencing, one scenario per test. Time
// moves only when a test calls Pass(); every loop is bounded.
//
// Each member talks to the shared fake through its own Link, which can cut
// that one member off (kUnavailable, as an unreachable etcd) and can run a
// hook just before a member's next transaction (to interleave two
// candidates deterministically). The threaded race joins its threads before
// checking anything.
#include "broker/src/cluster/group_member.h"

#include <gtest/gtest.h>

#include <functional>
#include <thread>

#include "tests/testutil/fake_coordinator.h"

namespace txmq::cluster {
namespace {

using namespace std::chrono_literals;
using testing::FakeCoordinator;

constexpr auto kTtl = 3s;
constexpr auto kTickEvery = 1s;

// One member's connection to the shared store.
class Link final : public Coordinator {
 public:
  explicit Link(Coordinator& store) : store_(store) {}

  void Cut(bool cut) { cut_ = cut; }
  // Runs `hook` once, just before the next Commit goes through.
  void BeforeNextCommit(std::function<void()> hook) { hook_ = std::move(hook); }

  Result<Lease> GrantLease(std::chrono::seconds ttl) override {
    if (cut_) return Down();
    return store_.GrantLease(ttl);
  }
  Result<std::chrono::seconds> KeepAlive(LeaseId lease) override {
    if (cut_) return Down();
    return store_.KeepAlive(lease);
  }
  Status RevokeLease(LeaseId lease) override {
    if (cut_) return Down();
    return store_.RevokeLease(lease);
  }
  Result<ReadResult> Get(const std::string& key) override {
    if (cut_) return Down();
    return store_.Get(key);
  }
  Result<ReadResult> GetPrefix(const std::string& prefix) override {
    if (cut_) return Down();
    return store_.GetPrefix(prefix);
  }
  Result<Revision> Put(const std::string& key, const std::string& value, LeaseId lease) override {
    if (cut_) return Down();
    return store_.Put(key, value, lease);
  }
  Result<Revision> Delete(const std::string& key) override {
    if (cut_) return Down();
    return store_.Delete(key);
  }
  Result<TxnResult> Commit(const Txn& txn) override {
    if (cut_) return Down();
    if (auto hook = std::exchange(hook_, nullptr)) hook();
    return store_.Commit(txn);
  }

 private:
  static Status Down() { return Status::Unavailable("link cut in this test"); }

  Coordinator& store_;
  bool cut_ = false;
  std::function<void()> hook_;
};

struct Node {
  std::unique_ptr<Link> link;
  std::unique_ptr<GroupMember> member;
  GroupMember* operator->() { return member.get(); }
};

class GroupMemberTest : public ::testing::Test {
 protected:
  Node Join(const std::string& name, size_t min_isr = 1, int64_t highest_epoch_seen = 0) {
    Node n;
    n.link = std::make_unique<Link>(store_);
    GroupMemberOptions o;
    o.cluster = "c";
    o.group = "g";
    o.node = name;
    o.listen_url = "tcp://" + name + ":5555";
    o.lease_ttl = kTtl;
    o.min_isr = min_isr;
    o.highest_epoch_seen = highest_epoch_seen;
    auto m = GroupMember::Open(*n.link, o);
    EXPECT_TRUE(m.ok()) << m.status().ToString();
    n.member = std::move(*m);
    return n;
  }

  void Pass(std::chrono::milliseconds d) {
    store_.Advance(d);
    now_ += d;
  }
  TickReport Tick(Node& n) { return n->Tick(now_); }

  // The stored record; epoch 0 when there is none.
  GroupState Record() {
    auto r = store_.Get(GroupStateKey("c", "g"));
    EXPECT_TRUE(r.ok());
    if (!r.ok() || r->kvs.empty()) return {};
    auto s = DecodeGroupState(r->kvs.front().value);
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    return s.ok() ? *s : GroupState{};
  }
  Revision RecordRevision() {
    auto r = store_.Get(GroupStateKey("c", "g"));
    return r.ok() && !r->kvs.empty() ? r->kvs.front().mod_revision : 0;
  }

  // n1 leads epoch 1 with ISR {n1, n2, n3}.
  void FormThree(Node& n1, Node& n2, Node& n3) {
    ASSERT_TRUE(Tick(n1).became_leader);
    Tick(n2);
    Tick(n3);
    ASSERT_TRUE(n1->ExpandIsr("n2", now_).ok());
    ASSERT_TRUE(n1->ExpandIsr("n3", now_).ok());
    ASSERT_EQ(Record(), (GroupState{1, "n1", {"n1", "n2", "n3"}}));
  }

  // Ticks `nodes` once a second, at most `seconds` times, until one leads.
  Node* TickUntilLeader(std::vector<Node*> nodes, int seconds) {
    for (int i = 0; i < seconds; ++i) {
      Pass(kTickEvery);
      for (Node* n : nodes) {
        Tick(*n);
        if ((*n)->IsLeader(now_)) return n;
      }
    }
    return nullptr;
  }

  // The record is rewritten behind the leader's back (same content, a new
  // revision): its next ISR change must fail, write nothing, and make it
  // step down.
  void CheckStaleIsrChangeFails(bool shrink) {
    Node n1 = Join("n1");
    ASSERT_TRUE(Tick(n1).became_leader);
    ASSERT_TRUE(n1->ExpandIsr("n2", now_).ok());
    const GroupState before = Record();
    ASSERT_TRUE(store_.Put(GroupStateKey("c", "g"), EncodeGroupState(before)).ok());
    const Revision rev = RecordRevision();
    Status s = shrink ? n1->ShrinkIsr("n2", now_) : n1->ExpandIsr("n3", now_);
    EXPECT_EQ(s.code(), StatusCode::kAborted) << s.ToString();
    EXPECT_EQ(Record(), before);
    EXPECT_EQ(RecordRevision(), rev);
    EXPECT_FALSE(n1->IsLeader(now_));
  }

  FakeCoordinator store_;
  Clock::time_point now_{};
};

TEST_F(GroupMemberTest, FirstNodeCreatesTheRecordWithEpochOne) {
  Node n1 = Join("n1");
  TickReport r = Tick(n1);
  EXPECT_TRUE(r.coordinator.ok()) << r.coordinator.ToString();
  EXPECT_TRUE(r.became_leader);
  EXPECT_FALSE(r.stepped_down);
  EXPECT_EQ(Record(), (GroupState{1, "n1", {"n1"}}));
  EXPECT_TRUE(n1->IsLeader(now_));
  EXPECT_EQ(n1->leader_epoch(), 1);
  EXPECT_EQ(n1->highest_epoch(), 1);
  auto reg = store_.Get(BrokerKey("c", "n1"));
  ASSERT_TRUE(reg.ok());
  ASSERT_EQ(reg->kvs.size(), 1u);
  EXPECT_NE(reg->kvs.front().lease, 0);
  EXPECT_EQ(*DecodeNodeRegistration(reg->kvs.front().value),
            (NodeRegistration{"tcp://n1:5555", "g"}));
}

TEST_F(GroupMemberTest, ANodeThatJoinsLaterFollowsOutsideTheIsr) {
  Node n1 = Join("n1");
  Node n2 = Join("n2");
  Tick(n1);
  TickReport r = Tick(n2);
  EXPECT_TRUE(r.coordinator.ok());
  EXPECT_FALSE(r.became_leader);
  EXPECT_FALSE(n2->IsLeader(now_));
  EXPECT_EQ(n2->leader_epoch(), 0);
  EXPECT_EQ(n2->view(), (GroupState{1, "n1", {"n1"}}));
  EXPECT_EQ(n2->leader_url(), "tcp://n1:5555");
}

TEST_F(GroupMemberTest, TwoFreshCandidatesInterleavedExactlyOneCreatesTheRecord) {
  Node n1 = Join("n1");
  Node n2 = Join("n2");
  // n1 has read "no record" and is about to write it when n2 does all of
  // its tick: n2 wins, n1's create fails.
  TickReport r2;
  n1.link->BeforeNextCommit([&] { r2 = Tick(n2); });
  TickReport r1 = Tick(n1);
  EXPECT_TRUE(r2.became_leader);
  EXPECT_FALSE(r1.became_leader);
  EXPECT_FALSE(n1->IsLeader(now_));
  EXPECT_EQ(Record(), (GroupState{1, "n2", {"n2"}}));
  Pass(kTickEvery);
  Tick(n1);
  EXPECT_FALSE(n1->IsLeader(now_));
  EXPECT_EQ(n1->view().leader, "n2");
}

TEST_F(GroupMemberTest, TwoIsrCandidatesInterleavedExactlyOneWinsTheNextEpoch) {
  Node n1 = Join("n1");
  Node n2 = Join("n2");
  Node n3 = Join("n3");
  FormThree(n1, n2, n3);
  // n1 dies: n2 and n3 keep ticking until its lease is gone.
  Pass(kTtl);
  TickReport r3;
  n2.link->BeforeNextCommit([&] { r3 = Tick(n3); });
  TickReport r2 = Tick(n2);
  EXPECT_TRUE(r3.became_leader);
  EXPECT_FALSE(r2.became_leader);
  EXPECT_EQ(Record(), (GroupState{2, "n3", {"n2", "n3"}}));
  EXPECT_TRUE(n3->IsLeader(now_));
  EXPECT_FALSE(n2->IsLeader(now_));
}

TEST_F(GroupMemberTest, CandidatesRacingOnThreadsElectExactlyOne) {
  for (int round = 0; round < 20; ++round) {
    FakeCoordinator store;
    Link l1(store), l2(store);
    GroupMemberOptions o;
    o.cluster = "c";
    o.group = "g";
    o.node = "a";
    auto a = GroupMember::Open(l1, o);
    o.node = "b";
    auto b = GroupMember::Open(l2, o);
    ASSERT_TRUE(a.ok() && b.ok());
    TickReport ra, rb;
    std::thread ta([&] { ra = (*a)->Tick(now_); });
    std::thread tb([&] { rb = (*b)->Tick(now_); });
    ta.join();
    tb.join();
    EXPECT_NE(ra.became_leader, rb.became_leader) << "round " << round;
    EXPECT_NE((*a)->IsLeader(now_), (*b)->IsLeader(now_)) << "round " << round;
  }
}

TEST_F(GroupMemberTest, AnIsrMemberReplacesALeaderWhoseLeaseExpired) {
  Node n1 = Join("n1");
  Node n2 = Join("n2");
  Node n3 = Join("n3");
  FormThree(n1, n2, n3);
  // n1 stops (no more ticks); the others see its key go after the TTL.
  Node* next = TickUntilLeader({&n2, &n3}, 10);
  ASSERT_NE(next, nullptr);
  const std::string winner = (*next)->options().node;
  // The gone leader left the ISR in the same write.
  EXPECT_EQ(Record(), (GroupState{2, winner, {"n2", "n3"}}));
  EXPECT_EQ((*next)->leader_epoch(), 2);
  Node& other = next == &n2 ? n3 : n2;
  Pass(kTickEvery);
  Tick(other);
  EXPECT_FALSE(other->IsLeader(now_));
  EXPECT_EQ(other->leader_url(), "tcp://" + winner + ":5555");

  // n1 had stopped claiming once its lease could have run out ...
  EXPECT_FALSE(n1->IsLeader(now_));
  // ... and when it runs again it steps down and follows the new epoch.
  TickReport r = Tick(n1);
  EXPECT_TRUE(r.stepped_down);
  EXPECT_FALSE(r.became_leader);
  EXPECT_FALSE(n1->IsLeader(now_));
  EXPECT_EQ(n1->highest_epoch(), 2);
  EXPECT_EQ(n1->view().leader, winner);
}

TEST_F(GroupMemberTest, ALeaderWithALiveLeaseStepsDownWhenItSeesAHigherEpoch) {
  Node n1 = Join("n1");
  Node n2 = Join("n2");
  Node n3 = Join("n3");
  FormThree(n1, n2, n3);
  // n1's liveness key vanishes while its lease lives on (as if etcd lost
  // it, or an operator deleted it): n2 may and does take over.
  ASSERT_TRUE(store_.Delete(BrokerKey("c", "n1")).ok());
  ASSERT_TRUE(Tick(n2).became_leader);
  EXPECT_EQ(Record().epoch, 2);
  EXPECT_TRUE(n1->IsLeader(now_));  // it cannot know before it reads
  TickReport r = Tick(n1);
  EXPECT_TRUE(r.stepped_down);
  EXPECT_NE(r.note.find("epoch 2"), std::string::npos) << r.note;
  EXPECT_FALSE(n1->IsLeader(now_));
  EXPECT_EQ(n1->leader_epoch(), 0);
  EXPECT_EQ(n1->highest_epoch(), 2);
  // Its key was deleted under its live lease. When n2 leaves, n1's first
  // try fails on its own key; it registers again and wins the next tick.
  ASSERT_TRUE(n2->Leave().ok());
  int ticks = 0;
  while (!n1->IsLeader(now_) && ticks++ < 5) {
    Pass(kTickEvery);
    Tick(n1);
    Tick(n3);
  }
  EXPECT_TRUE(n1->IsLeader(now_) != n3->IsLeader(now_));
  EXPECT_EQ(Record().epoch, 3);
}

TEST_F(GroupMemberTest, ALeaderCutOffFromTheStoreStopsClaimingWhenItsLeaseCouldHaveEnded) {
  Node n1 = Join("n1");
  Node n2 = Join("n2");
  Node n3 = Join("n3");
  FormThree(n1, n2, n3);
  n1.link->Cut(true);
  Pass(kTickEvery);
  TickReport r = Tick(n1);
  EXPECT_EQ(r.coordinator.code(), StatusCode::kUnavailable);
  EXPECT_FALSE(r.stepped_down);
  EXPECT_TRUE(n1->IsLeader(now_));
  Pass(kTtl - kTickEvery - 1ms);
  Tick(n1);
  EXPECT_TRUE(n1->IsLeader(now_));  // the last keep-alive was less than a TTL ago
  Pass(1ms);
  EXPECT_FALSE(n1->IsLeader(now_));  // now the store may have ended it
  EXPECT_FALSE(n1->CanAck(now_));
  // Meanwhile the others elect, and n1, healed, follows.
  Node* next = TickUntilLeader({&n2, &n3}, 5);
  ASSERT_NE(next, nullptr);
  n1.link->Cut(false);
  Pass(kTickEvery);
  r = Tick(n1);
  EXPECT_TRUE(r.stepped_down);
  EXPECT_FALSE(n1->IsLeader(now_));
  EXPECT_EQ(n1->view().leader, (*next)->options().node);
}

TEST_F(GroupMemberTest, ANodeOutsideTheIsrNeverLeadsEvenWhenItIsTheOnlyOneAlive) {
  Node n1 = Join("n1");
  Node n2 = Join("n2");
  ASSERT_TRUE(Tick(n1).became_leader);
  Tick(n2);
  // n1 dies with ISR {n1}: n2 is stale and must not lead.
  for (int i = 0; i < 10; ++i) {
    Pass(kTickEvery);
    TickReport r = Tick(n2);
    EXPECT_TRUE(r.coordinator.ok()) << r.coordinator.ToString();
    EXPECT_FALSE(r.became_leader);
    EXPECT_FALSE(n2->IsLeader(now_));
  }
  EXPECT_EQ(Record(), (GroupState{1, "n1", {"n1"}}));
  EXPECT_NE(Tick(n2).note.find("not in the ISR"), std::string::npos);
  // When n1 comes back (a restart: a new process), it leads again.
  Node n1_again = Join("n1");
  EXPECT_TRUE(Tick(n1_again).became_leader);
  EXPECT_EQ(Record(), (GroupState{2, "n1", {"n1"}}));
}

TEST_F(GroupMemberTest, ARestartedLeaderTakesANewEpoch) {
  Node n1 = Join("n1");
  Node n2 = Join("n2");
  ASSERT_TRUE(Tick(n1).became_leader);
  Tick(n2);
  ASSERT_TRUE(n1->ExpandIsr("n2", now_).ok());
  // The process restarts before its old lease ends: the record still names
  // n1 and its key is still there, so n2 waits, and the new n1 leads with
  // epoch 2 (its log must start a new epoch).
  Node n1_again = Join("n1", 1, /*highest_epoch_seen=*/1);
  TickReport r = Tick(n1_again);
  EXPECT_TRUE(r.became_leader);
  EXPECT_EQ(n1_again->leader_epoch(), 2);
  EXPECT_EQ(Record(), (GroupState{2, "n1", {"n1", "n2"}}));
  Tick(n2);
  EXPECT_FALSE(n2->IsLeader(now_));
  // The old incarnation, if it still ran, steps down.
  EXPECT_TRUE(Tick(n1).stepped_down);
}

TEST_F(GroupMemberTest, ALeaderThatLostItsLeaseUnreplacedWinsANewEpochInOneTick) {
  Node n1 = Join("n1");
  ASSERT_TRUE(Tick(n1).became_leader);
  auto key = store_.Get(BrokerKey("c", "n1"));
  ASSERT_TRUE(key.ok() && key->kvs.size() == 1u);
  ASSERT_TRUE(store_.RevokeLease(key->kvs.front().lease).ok());
  // Others could have taken over: it steps down, then, as nobody did and it
  // is still named leader, runs again with a new epoch.
  TickReport r = Tick(n1);
  EXPECT_TRUE(r.stepped_down);
  EXPECT_TRUE(r.became_leader);
  EXPECT_EQ(n1->leader_epoch(), 2);
  EXPECT_TRUE(n1->IsLeader(now_));
  EXPECT_EQ(Record(), (GroupState{2, "n1", {"n1"}}));
}

TEST_F(GroupMemberTest, LeavingHandsOverWithoutWaitingForTheTtl) {
  Node n1 = Join("n1");
  Node n2 = Join("n2");
  ASSERT_TRUE(Tick(n1).became_leader);
  Tick(n2);
  ASSERT_TRUE(n1->ExpandIsr("n2", now_).ok());
  ASSERT_TRUE(n1->Leave().ok());
  EXPECT_FALSE(n1->IsLeader(now_));
  EXPECT_TRUE(Tick(n2).became_leader);
  EXPECT_EQ(Record(), (GroupState{2, "n2", {"n2"}}));
}

TEST_F(GroupMemberTest, TheLeaderShrinksAndExpandsTheIsr) {
  Node n1 = Join("n1", /*min_isr=*/2);
  Node n2 = Join("n2");
  Node n3 = Join("n3");
  ASSERT_TRUE(Tick(n1).became_leader);
  EXPECT_TRUE(n1->IsLeader(now_));
  EXPECT_FALSE(n1->CanAck(now_));  // {n1} < min_isr 2
  ASSERT_TRUE(n1->ExpandIsr("n2", now_).ok());
  EXPECT_TRUE(n1->CanAck(now_));
  ASSERT_TRUE(n1->ExpandIsr("n3", now_).ok());
  ASSERT_TRUE(n1->ExpandIsr("n3", now_).ok());  // already in: no write
  ASSERT_TRUE(n1->ShrinkIsr("n2", now_).ok());
  ASSERT_TRUE(n1->ShrinkIsr("n2", now_).ok());  // already out: no write
  EXPECT_EQ(Record(), (GroupState{1, "n1", {"n1", "n3"}}));
  ASSERT_TRUE(n1->ShrinkIsr("n3", now_).ok());
  EXPECT_FALSE(n1->CanAck(now_));
  EXPECT_EQ(n1->ShrinkIsr("n1", now_).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Record(), (GroupState{1, "n1", {"n1"}}));
  EXPECT_EQ(n1->view(), Record());
  // A follower may not change it.
  Tick(n2);
  EXPECT_EQ(n2->ExpandIsr("n2", now_).code(), StatusCode::kFailedPrecondition);
  // The leader's own writes do not make it step down at its next tick.
  Pass(kTickEvery);
  EXPECT_FALSE(Tick(n1).stepped_down);
  EXPECT_TRUE(n1->IsLeader(now_));
}

TEST_F(GroupMemberTest, AShrinkAtAStaleRevisionFailsAndChangesNothing) {
  CheckStaleIsrChangeFails(/*shrink=*/true);
}

TEST_F(GroupMemberTest, AnExpandAtAStaleRevisionFailsAndChangesNothing) {
  CheckStaleIsrChangeFails(/*shrink=*/false);
}

TEST_F(GroupMemberTest, ASupersededLeaderCannotChangeTheIsr) {
  Node n1 = Join("n1");
  Node n2 = Join("n2");
  Node n3 = Join("n3");
  FormThree(n1, n2, n3);
  ASSERT_TRUE(store_.Delete(BrokerKey("c", "n1")).ok());
  ASSERT_TRUE(Tick(n2).became_leader);
  const GroupState after_election = Record();
  ASSERT_EQ(after_election.epoch, 2);
  // n1 has not ticked: its view still says it leads epoch 1.
  ASSERT_TRUE(n1->IsLeader(now_));
  EXPECT_EQ(n1->ShrinkIsr("n2", now_).code(), StatusCode::kAborted);
  EXPECT_EQ(Record(), after_election);
  EXPECT_FALSE(n1->IsLeader(now_));
  EXPECT_EQ(n1->ExpandIsr("n4", now_).code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(Record(), after_election);
}

TEST_F(GroupMemberTest, AnUnreachableStoreChangesNoRoleAndElectsNobody) {
  Node n1 = Join("n1");
  Node n2 = Join("n2");
  Node n3 = Join("n3");
  FormThree(n1, n2, n3);
  store_.SetReachable(false);
  for (int i = 0; i < 2; ++i) {
    Pass(kTickEvery);
    for (Node* n : {&n1, &n2, &n3}) {
      TickReport r = Tick(*n);
      EXPECT_EQ(r.coordinator.code(), StatusCode::kUnavailable);
      EXPECT_FALSE(r.became_leader);
      EXPECT_FALSE(r.stepped_down);
    }
  }
  EXPECT_TRUE(n1->IsLeader(now_));  // leaders keep serving ...
  EXPECT_EQ(n1->leader_epoch(), 1);
  EXPECT_EQ(n1->ShrinkIsr("n3", now_).code(), StatusCode::kUnavailable);
  EXPECT_TRUE(n1->IsLeader(now_));  // ... nothing was sent, nothing changed
  for (int i = 0; i < 5; ++i) {
    Pass(kTickEvery);
    for (Node* n : {&n2, &n3}) {
      EXPECT_FALSE(Tick(*n).became_leader);
      EXPECT_FALSE((*n)->IsLeader(now_));  // elections wait
    }
  }
  // ... but only as long as their lease may still live.
  EXPECT_FALSE(n1->IsLeader(now_));
  store_.SetReachable(true);
  EXPECT_EQ(Record(), (GroupState{1, "n1", {"n1", "n2", "n3"}}));
  // Back: the store ended every lease meanwhile; exactly one leads epoch 2.
  Pass(kTickEvery);
  for (Node* n : {&n1, &n2, &n3}) Tick(*n);
  Pass(kTickEvery);
  int leaders = 0;
  for (Node* n : {&n1, &n2, &n3}) {
    Tick(*n);
    leaders += (*n)->IsLeader(now_);
  }
  EXPECT_EQ(leaders, 1);
  EXPECT_EQ(Record().epoch, 2);
}

TEST_F(GroupMemberTest, AnEpochNeverGoesBackEvenIfTheRecordIsReset) {
  Node n1 = Join("n1", 1, /*highest_epoch_seen=*/5);
  ASSERT_TRUE(Tick(n1).became_leader);
  EXPECT_EQ(Record().epoch, 6);
}

TEST_F(GroupMemberTest, OptionsAreChecked) {
  GroupMemberOptions o;
  o.cluster = "c";
  o.group = "g";
  o.node = "a/b";
  auto m = GroupMember::Open(store_, o);
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("node"), std::string::npos);
  o.node = "n";
  o.lease_ttl = 0s;
  EXPECT_FALSE(GroupMember::Open(store_, o).ok());
  o.lease_ttl = 1s;
  o.min_isr = 0;
  EXPECT_FALSE(GroupMember::Open(store_, o).ok());
}

}  // namespace
}  // namespace txmq::cluster
