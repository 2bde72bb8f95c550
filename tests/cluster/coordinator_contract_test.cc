// The Coordinator contract, run against the in-memory fake and a real etcd
// alike: what leader election and ISR changes rely on (conditional writes
// fenced by revision, leases that take their keys with them) behaves the
// same on both, so unit tests on the fake say something about production.
//
// Every RealEtcd test shares one etcd (started by the first of them, stopped
// after the last); each test writes under its own key prefix. Threads: the
// leader race runs two short-lived threads that only call the coordinator
// and are joined before the test checks anything.
#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

#include "broker/src/cluster/etcd_coordinator.h"
#include "tests/cluster/etcd_server.h"
#include "tests/testutil/fake_coordinator.h"

namespace txmq::cluster {
namespace {

using namespace std::chrono_literals;
using testing::EtcdServer;
using testing::FakeCoordinator;

// A coordinator and the time it lives in.
class Backend {
 public:
  virtual ~Backend() = default;
  virtual Coordinator& coordinator() = 0;
  // Lets `d` pass: the fake's clock moves at once, a real etcd's by sleeping.
  virtual void Pass(std::chrono::milliseconds d) = 0;
};

class FakeBackend final : public Backend {
 public:
  Coordinator& coordinator() override { return fake_; }
  void Pass(std::chrono::milliseconds d) override { fake_.Advance(d); }

 private:
  FakeCoordinator fake_;
};

class EtcdBackend final : public Backend {
 public:
  explicit EtcdBackend(std::unique_ptr<Coordinator> c) : c_(std::move(c)) {}
  Coordinator& coordinator() override { return *c_; }
  void Pass(std::chrono::milliseconds d) override { std::this_thread::sleep_for(d); }

 private:
  std::unique_ptr<Coordinator> c_;
};

class CoordinatorContract : public ::testing::TestWithParam<std::string> {
 protected:
  static void TearDownTestSuite() { etcd_.reset(); }

  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    std::string name = info->name();
    prefix_ = "/txmq-test/" + name.substr(0, name.find('/')) + "/";
    if (GetParam() == "fake") {
      backend_ = std::make_unique<FakeBackend>();
      return;
    }
    if (!etcd_ && !etcd_failed_) {
      etcd_ = EtcdServer::Start();
      etcd_failed_ = etcd_ == nullptr;
    }
    ASSERT_TRUE(etcd_) << "no etcd to test against";
    EtcdOptions options;
    options.endpoints = {etcd_->endpoint()};
    auto c = OpenEtcdCoordinator(options);
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    backend_ = std::make_unique<EtcdBackend>(std::move(*c));
  }

  Coordinator& c() { return backend_->coordinator(); }
  std::string Key(const std::string& name) const { return prefix_ + name; }

  // The key's value, nullopt if it is absent (failing the test on an error).
  std::optional<std::string> ValueOf(const std::string& key) {
    auto r = c().Get(key);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    if (!r.ok() || r->kvs.empty()) return std::nullopt;
    return r->kvs[0].value;
  }

  // Lets time pass in steps until `key` is gone or `bound` passed.
  bool WaitGone(const std::string& key, std::chrono::milliseconds bound) {
    for (auto waited = 0ms; waited < bound; waited += 100ms) {
      if (!ValueOf(key)) return true;
      backend_->Pass(100ms);
    }
    return !ValueOf(key);
  }

  static inline std::unique_ptr<EtcdServer> etcd_;
  static inline bool etcd_failed_ = false;
  std::unique_ptr<Backend> backend_;
  std::string prefix_;
};

// Two candidates race to create the leader key; the store picks one.
TEST_P(CoordinatorContract, OnlyOneCandidateCreatesTheLeaderKey) {
  const std::string leader = Key("groups/g1/leader");
  std::atomic<int> winners{0};
  std::string winner;
  std::mutex mu;
  auto campaign = [&](const std::string& me) {
    auto r = c().Commit(Txn{{Compare::Absent(leader)}, {WriteOp::Put(leader, me)}, {}});
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    if (r->succeeded) {
      winners++;
      std::lock_guard lock(mu);
      winner = me;
    }
  };
  std::thread a(campaign, "node-a");
  std::thread b(campaign, "node-b");
  a.join();
  b.join();
  EXPECT_EQ(winners.load(), 1);
  EXPECT_EQ(ValueOf(leader), winner);

  // A late candidate fails too, and the failure branch runs instead.
  auto late = c().Commit(Txn{{Compare::Absent(leader)},
                             {WriteOp::Put(leader, "node-c")},
                             {WriteOp::Put(Key("lost"), "node-c")}});
  ASSERT_TRUE(late.ok()) << late.status().ToString();
  EXPECT_FALSE(late->succeeded);
  EXPECT_EQ(ValueOf(leader), winner);
  EXPECT_EQ(ValueOf(Key("lost")), "node-c");
}

// Two writers read the ISR at one revision; the first to write wins, the
// other's write conditioned on what it read is refused.
TEST_P(CoordinatorContract, ModRevisionFencesAStaleWriter) {
  const std::string isr = Key("groups/g1/isr");
  auto put = c().Put(isr, "epoch=1 a,b,c");
  ASSERT_TRUE(put.ok()) << put.status().ToString();
  auto read = c().Get(isr);
  ASSERT_TRUE(read.ok() && read->kvs.size() == 1);
  const Revision seen = read->kvs[0].mod_revision;
  EXPECT_EQ(seen, *put);

  auto first =
      c().Commit(Txn{{Compare::ModRevisionIs(isr, seen)}, {WriteOp::Put(isr, "epoch=2 a,b")}, {}});
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_TRUE(first->succeeded);
  EXPECT_GT(first->revision, seen);

  auto stale =
      c().Commit(Txn{{Compare::ModRevisionIs(isr, seen)}, {WriteOp::Put(isr, "epoch=2 a,c")}, {}});
  ASSERT_TRUE(stale.ok()) << stale.status().ToString();
  EXPECT_FALSE(stale->succeeded);
  EXPECT_EQ(stale->revision, first->revision) << "a refused transaction writes nothing";
  EXPECT_EQ(ValueOf(isr), "epoch=2 a,b");
}

// A leader key deleted and created again is another incarnation: a write
// fenced on the old create_revision fails even though the value is the same.
TEST_P(CoordinatorContract, CreateRevisionFencesAnOldIncarnation) {
  const std::string leader = Key("leader");
  ASSERT_TRUE(c().Put(leader, "node-a").ok());
  const Revision first_life = c().Get(leader)->kvs.at(0).create_revision;
  ASSERT_TRUE(c().Delete(leader).ok());
  ASSERT_TRUE(c().Put(leader, "node-a").ok());

  auto r = c().Commit(
      Txn{{Compare::CreateRevisionIs(leader, first_life), Compare::ValueIs(leader, "node-a")},
          {WriteOp::Put(Key("isr"), "changed")},
          {}});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_FALSE(r->succeeded);
  EXPECT_FALSE(ValueOf(Key("isr")));

  const Revision now = c().Get(leader)->kvs.at(0).create_revision;
  r = c().Commit(Txn{{Compare::CreateRevisionIs(leader, now), Compare::ValueIs(leader, "node-a")},
                     {WriteOp::Put(Key("isr"), "changed"), WriteOp::Delete(Key("gone"))},
                     {}});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->succeeded);
  EXPECT_EQ(ValueOf(Key("isr")), "changed");
}

TEST_P(CoordinatorContract, RevisionsCountWrites) {
  const std::string k = Key("k");
  auto r1 = c().Put(k, "1");
  auto r2 = c().Put(k, "2");
  ASSERT_TRUE(r1.ok() && r2.ok());
  EXPECT_EQ(*r2, *r1 + 1);
  auto got = c().Get(k);
  ASSERT_TRUE(got.ok());
  ASSERT_EQ(got->kvs.size(), 1u);
  EXPECT_EQ(got->kvs[0].create_revision, *r1);
  EXPECT_EQ(got->kvs[0].mod_revision, *r2);
  EXPECT_EQ(got->kvs[0].version, 2);
  EXPECT_EQ(got->revision, *r2);

  auto nothing = c().Delete(Key("never-written"));
  ASSERT_TRUE(nothing.ok());
  EXPECT_EQ(*nothing, *r2) << "deleting a missing key writes nothing";

  // A transaction's writes share one revision.
  auto t = c().Commit(Txn{{}, {WriteOp::Put(Key("x"), "x"), WriteOp::Put(Key("y"), "y")}, {}});
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->revision, *r2 + 1);
  EXPECT_EQ(c().Get(Key("y"))->kvs.at(0).mod_revision, t->revision);
}

TEST_P(CoordinatorContract, GetPrefixReturnsTheKeysUnderItSorted) {
  const std::string binary("v\0\xff\x01", 4);
  ASSERT_TRUE(c().Put(Key("brokers/b"), binary).ok());
  ASSERT_TRUE(c().Put(Key("brokers/a"), "").ok());
  ASSERT_TRUE(c().Put(Key("brokers0"), "not under brokers/").ok());
  auto r = c().GetPrefix(Key("brokers/"));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->kvs.size(), 2u);
  EXPECT_EQ(r->kvs[0].key, Key("brokers/a"));
  EXPECT_EQ(r->kvs[0].value, "");
  EXPECT_EQ(r->kvs[1].key, Key("brokers/b"));
  EXPECT_EQ(r->kvs[1].value, binary);
  EXPECT_EQ(c().GetPrefix("").status().code(), StatusCode::kInvalidArgument);
}

TEST_P(CoordinatorContract, RevokingALeaseDeletesItsKeys) {
  auto lease = c().GrantLease(5s);
  ASSERT_TRUE(lease.ok()) << lease.status().ToString();
  EXPECT_GE(lease->ttl, 5s);
  const std::string me = Key("brokers/n1");
  auto put = c().Commit(Txn{{Compare::Absent(me)}, {WriteOp::Put(me, "tcp://n1", lease->id)}, {}});
  ASSERT_TRUE(put.ok() && put->succeeded) << put.status().ToString();
  EXPECT_EQ(c().Get(me)->kvs.at(0).lease, lease->id);

  ASSERT_TRUE(c().RevokeLease(lease->id).ok());
  EXPECT_FALSE(ValueOf(me));
  EXPECT_EQ(c().KeepAlive(lease->id).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(c().RevokeLease(lease->id).code(), StatusCode::kNotFound);
  auto late = c().Put(me, "tcp://n1", lease->id);
  EXPECT_EQ(late.status().code(), StatusCode::kNotFound) << late.status().ToString();
  EXPECT_FALSE(ValueOf(me));
  EXPECT_EQ(c().GrantLease(0s).status().code(), StatusCode::kInvalidArgument);
}

TEST_P(CoordinatorContract, ALeaseNotKeptAliveExpiresWithItsKeys) {
  auto lease = c().GrantLease(1s);  // etcd may raise it to its minimum
  ASSERT_TRUE(lease.ok()) << lease.status().ToString();
  const std::string me = Key("brokers/n1");
  ASSERT_TRUE(c().Put(me, "tcp://n1", lease->id).ok());
  ASSERT_TRUE(ValueOf(me));
  // etcd checks for expired leases every 500 ms and deletes through raft.
  EXPECT_TRUE(WaitGone(me, lease->ttl + 3s)) << "the key outlived its lease";
  EXPECT_EQ(c().KeepAlive(lease->id).status().code(), StatusCode::kNotFound);
}

TEST_P(CoordinatorContract, KeepAliveKeepsTheLease) {
  auto lease = c().GrantLease(1s);
  ASSERT_TRUE(lease.ok()) << lease.status().ToString();
  const std::string me = Key("brokers/n1");
  ASSERT_TRUE(c().Put(me, "tcp://n1", lease->id).ok());
  const auto step = std::chrono::duration_cast<std::chrono::milliseconds>(lease->ttl) / 4;
  for (auto lived = 0ms; lived < 2 * lease->ttl + step; lived += step) {
    backend_->Pass(step);
    auto ttl = c().KeepAlive(lease->id);
    ASSERT_TRUE(ttl.ok()) << ttl.status().ToString();
    EXPECT_EQ(*ttl, lease->ttl);
    ASSERT_TRUE(ValueOf(me)) << "the key went away after " << lived.count() << " ms";
  }
  ASSERT_TRUE(c().RevokeLease(lease->id).ok());
}

INSTANTIATE_TEST_SUITE_P(Fake, CoordinatorContract, ::testing::Values("fake"));
INSTANTIATE_TEST_SUITE_P(RealEtcd, CoordinatorContract, ::testing::Values("etcd"));

}  // namespace
}  // namespace txmq::cluster
