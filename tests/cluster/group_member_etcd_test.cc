// GroupMember against a real etcd: the failovers the fake tests cover, once
// with etcd's own lease expiry and revocation, so that the rules hold on the
// store production uses. Real time, 1 s leases (the harness's minimum), and
// every wait bounded: the suite takes a few seconds.
//
// One etcd serves the suite (started by the first test, stopped after the
// last); each test uses its own cluster name, so its own keys.
#include <gtest/gtest.h>

#include <thread>

#include "broker/src/cluster/etcd_coordinator.h"
#include "broker/src/cluster/group_member.h"
#include "tests/cluster/etcd_server.h"

namespace txmq::cluster {
namespace {

using namespace std::chrono_literals;
using testing::EtcdServer;

constexpr auto kEtcdTickEvery = 250ms;

struct EtcdNode {
  std::unique_ptr<Coordinator> link;  // one client per node, as in production
  std::unique_ptr<GroupMember> member;
  GroupMember* operator->() { return member.get(); }
};

class RealEtcdGroupMember : public ::testing::Test {
 protected:
  static void TearDownTestSuite() { etcd_.reset(); }

  void SetUp() override {
    if (!etcd_ && !etcd_failed_) {
      etcd_ = EtcdServer::Start();
      etcd_failed_ = etcd_ == nullptr;
    }
    ASSERT_TRUE(etcd_) << "no etcd to test against";
    cluster_ = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    observer_ = Connect();
    ASSERT_TRUE(observer_);
  }

  std::unique_ptr<Coordinator> Connect() {
    EtcdOptions options;
    options.endpoints = {etcd_->endpoint()};
    auto c = OpenEtcdCoordinator(options);
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    return c.ok() ? std::move(*c) : nullptr;
  }

  EtcdNode Join(const std::string& name) {
    EtcdNode n;
    n.link = Connect();
    GroupMemberOptions o;
    o.cluster = cluster_;
    o.group = "g";
    o.node = name;
    o.listen_url = "tcp://" + name + ":5555";
    o.lease_ttl = 1s;
    auto m = GroupMember::Open(*n.link, o);
    EXPECT_TRUE(m.ok()) << m.status().ToString();
    n.member = std::move(*m);
    return n;
  }

  GroupState Record() {
    auto r = observer_->Get(GroupStateKey(cluster_, "g"));
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    if (!r.ok() || r->kvs.empty()) return {};
    auto s = DecodeGroupState(r->kvs.front().value);
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    return s.ok() ? *s : GroupState{};
  }

  // n1 leads epoch 1 with ISR {n1, n2, n3}.
  void FormThree(EtcdNode& n1, EtcdNode& n2, EtcdNode& n3) {
    ASSERT_TRUE(n1->Tick(Clock::now()).became_leader);
    for (EtcdNode* n : {&n2, &n3}) {
      TickReport r = (*n)->Tick(Clock::now());
      ASSERT_TRUE(r.coordinator.ok()) << r.coordinator.ToString();
    }
    ASSERT_TRUE(n1->ExpandIsr("n2", Clock::now()).ok());
    ASSERT_TRUE(n1->ExpandIsr("n3", Clock::now()).ok());
    ASSERT_EQ(Record(), (GroupState{1, "n1", {"n1", "n2", "n3"}}));
  }

  static inline std::unique_ptr<EtcdServer> etcd_;
  static inline bool etcd_failed_ = false;
  std::string cluster_;
  std::unique_ptr<Coordinator> observer_;
};

TEST_F(RealEtcdGroupMember, AnIsrMemberTakesOverWhenTheLeadersLeaseExpires) {
  EtcdNode n1 = Join("n1");
  EtcdNode n2 = Join("n2");
  EtcdNode n3 = Join("n3");
  FormThree(n1, n2, n3);
  // n1 stops ticking; etcd ends its lease about a TTL later.
  const auto stopped = Clock::now();
  EtcdNode* next = nullptr;
  while (!next && Clock::now() - stopped < 6s) {
    std::this_thread::sleep_for(kEtcdTickEvery);
    for (EtcdNode* n : {&n2, &n3}) {
      TickReport r = (*n)->Tick(Clock::now());
      EXPECT_TRUE(r.coordinator.ok()) << r.coordinator.ToString();
      if (r.became_leader) next = n;
    }
  }
  ASSERT_NE(next, nullptr) << "no failover within 6 s";
  const std::string winner = (*next)->options().node;
  EXPECT_EQ(Record(), (GroupState{2, winner, {"n2", "n3"}}));  // n1 left the ISR
  EXPECT_FALSE((next == &n2 ? n3 : n2)->IsLeader(Clock::now()));
  // n1 gave up its claim by its own clock, and steps down when it runs.
  EXPECT_FALSE(n1->IsLeader(Clock::now()));
  TickReport r = n1->Tick(Clock::now());
  EXPECT_TRUE(r.coordinator.ok()) << r.coordinator.ToString();
  EXPECT_TRUE(r.stepped_down);
  EXPECT_FALSE(n1->IsLeader(Clock::now()));
  EXPECT_EQ(n1->view().leader, winner);
  EXPECT_EQ(n1->highest_epoch(), 2);
}

TEST_F(RealEtcdGroupMember, ALeaderWhoseLeaseWasRevokedIsFencedOutOfTheIsr) {
  EtcdNode n1 = Join("n1");
  EtcdNode n2 = Join("n2");
  EtcdNode n3 = Join("n3");
  FormThree(n1, n2, n3);
  // etcd ends n1's lease behind its back (as when it expired unnoticed).
  auto key = observer_->Get(BrokerKey(cluster_, "n1"));
  ASSERT_TRUE(key.ok() && key->kvs.size() == 1u);
  ASSERT_TRUE(observer_->RevokeLease(key->kvs.front().lease).ok());
  ASSERT_TRUE(n2->Tick(Clock::now()).became_leader);
  const GroupState elected = Record();
  EXPECT_EQ(elected, (GroupState{2, "n2", {"n2", "n3"}}));
  // n1 still believes it leads epoch 1; etcd refuses its ISR change.
  ASSERT_TRUE(n1->IsLeader(Clock::now()));
  EXPECT_EQ(n1->ShrinkIsr("n3", Clock::now()).code(), StatusCode::kAborted);
  EXPECT_FALSE(n1->IsLeader(Clock::now()));
  EXPECT_EQ(Record(), elected);
  // At its next tick it registers again and follows n2.
  TickReport r = n1->Tick(Clock::now());
  EXPECT_TRUE(r.coordinator.ok()) << r.coordinator.ToString();
  EXPECT_FALSE(r.became_leader);
  EXPECT_EQ(n1->view().leader, "n2");
  EXPECT_EQ(n1->leader_url(), "tcp://n2:5555");
}

}  // namespace
}  // namespace txmq::cluster
