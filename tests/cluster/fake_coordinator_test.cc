// What only the fake can show: a lease ends exactly at its TTL on the
// test's clock, and an unreachable store fails every call.
#include "tests/testutil/fake_coordinator.h"

#include <gtest/gtest.h>

namespace txmq::testing {
namespace {

using namespace std::chrono_literals;
using cluster::Compare;
using cluster::Txn;
using cluster::WriteOp;

TEST(FakeCoordinator, ALeaseEndsExactlyAtItsTtlAndKeepAliveRestartsIt) {
  FakeCoordinator c;
  auto lease = c.GrantLease(3s);
  ASSERT_TRUE(lease.ok());
  ASSERT_TRUE(c.Put("/b/n1", "x", lease->id).ok());
  c.Advance(2999ms);
  ASSERT_TRUE(c.KeepAlive(lease->id).ok());
  c.Advance(2999ms);
  EXPECT_EQ(c.Get("/b/n1")->kvs.size(), 1u);
  const auto before = c.revision();
  c.Advance(1ms);
  EXPECT_TRUE(c.Get("/b/n1")->kvs.empty());
  EXPECT_EQ(c.revision(), before + 1) << "expiry deletes the lease's keys in one revision";
  EXPECT_EQ(c.KeepAlive(lease->id).status().code(), StatusCode::kNotFound);
}

TEST(FakeCoordinator, AKeyPutAgainWithoutTheLeaseOutlivesIt) {
  FakeCoordinator c;
  auto lease = c.GrantLease(1s);
  ASSERT_TRUE(lease.ok());
  ASSERT_TRUE(c.Put("/k", "leased", lease->id).ok());
  ASSERT_TRUE(c.Put("/k", "kept").ok());
  c.Advance(2s);
  ASSERT_EQ(c.Get("/k")->kvs.size(), 1u);
  EXPECT_EQ(c.Get("/k")->kvs[0].value, "kept");
}

TEST(FakeCoordinator, UnreachableFailsEveryCallWithUnavailable) {
  FakeCoordinator c;
  auto lease = c.GrantLease(5s);
  ASSERT_TRUE(lease.ok());
  c.SetReachable(false);
  EXPECT_EQ(c.GrantLease(5s).status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(c.KeepAlive(lease->id).status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(c.RevokeLease(lease->id).code(), StatusCode::kUnavailable);
  EXPECT_EQ(c.Get("/k").status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(c.GetPrefix("/k").status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(c.Put("/k", "v").status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(c.Delete("/k").status().code(), StatusCode::kUnavailable);
  auto txn = c.Commit(Txn{{Compare::Absent("/k")}, {WriteOp::Put("/k", "v")}, {}});
  EXPECT_EQ(txn.status().code(), StatusCode::kUnavailable);
  c.SetReachable(true);
  EXPECT_TRUE(c.Get("/k").ok());
}

TEST(FakeCoordinator, APutWithAnEndedLeaseFailsTheWholeTransaction) {
  FakeCoordinator c;
  auto lease = c.GrantLease(1s);
  ASSERT_TRUE(lease.ok());
  ASSERT_TRUE(c.RevokeLease(lease->id).ok());
  const auto before = c.revision();
  auto txn = c.Commit(Txn{{}, {WriteOp::Put("/a", "v"), WriteOp::Put("/b", "v", lease->id)}, {}});
  EXPECT_EQ(txn.status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(c.Get("/a")->kvs.empty());
  EXPECT_EQ(c.revision(), before);
}

}  // namespace
}  // namespace txmq::testing
