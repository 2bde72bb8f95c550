// The placement thread's answers to the core thread (placement_thread.h):
// a topic asked for is pending until stored; a failed store is reported
// to every look until an asking lookup takes it and asks again. Runs on
// the in-memory coordinator; the test thread waits for the placement
// thread's on_placed callback, counted under an atomic.
#include "broker/src/cluster/placement_thread.h"

#include <gtest/gtest.h>

#include <atomic>
#include <memory>

#include "tests/testutil/fake_coordinator.h"
#include "tests/testutil/testutil.h"

namespace txmq::cluster {
namespace {

using namespace std::chrono_literals;
using testing::FakeCoordinator;
using testing::WaitFor;

// No group has registered, so every store fails "no broker group".
TEST(PlacementThread, AFailedStoreIsSeenByEveryLookUntilAnAskingLookupTakesItAndAsksAgain) {
  std::atomic<int> tries{0};
  PlacementThread thread(std::make_unique<FakeCoordinator>(), "c1", 10s, [&] { ++tries; });
  PlacementLookup asked = thread.Lookup("orders", 4);
  EXPECT_EQ(asked.placement, nullptr);
  EXPECT_TRUE(asked.error.ok()) << "pending: " << asked.error.ToString();
  ASSERT_TRUE(WaitFor([&] { return tries.load() == 1; }));

  // Looks (queue count 0: the gate's view of a topic, the parked requests
  // being resumed) all see the failure; none takes it from the others.
  for (int i = 0; i < 3; ++i) {
    PlacementLookup look = thread.Lookup("orders", 0);
    EXPECT_EQ(look.placement, nullptr);
    EXPECT_EQ(look.error.code(), StatusCode::kFailedPrecondition) << look.error.ToString();
    EXPECT_NE(look.error.message().find("no broker group"), std::string::npos)
        << look.error.ToString();
  }
  EXPECT_EQ(tries.load(), 1) << "a look never asks";

  // A request that asks takes the failure, once; the next one asks again.
  EXPECT_EQ(thread.Lookup("orders", 4).error.code(), StatusCode::kFailedPrecondition);
  EXPECT_TRUE(thread.Lookup("orders", 4).error.ok());
  EXPECT_TRUE(WaitFor([&] { return tries.load() == 2; }));
}

// A drain report is written only while its topic is placed: a report
// computed from a map read before the topic's placement was deleted must
// not outlive it (it would pass for the report of the name placed anew).
TEST(PlacementThread, DrainReportsOfATopicNoLongerPlacedAreNotWritten) {
  auto owned = std::make_unique<FakeCoordinator>();
  FakeCoordinator& etcd = *owned;
  ASSERT_TRUE(etcd.Put(GroupStateKey("c1", "g1"), EncodeGroupState({1, "a", {"a"}})).ok());
  ASSERT_TRUE(etcd.Put(BrokerKey("c1", "a"), EncodeNodeRegistration({"tcp://x:1", "g1"})).ok());
  ASSERT_TRUE(EnsurePlacement(etcd, "c1", "placed", 2).ok());
  PlacementThread thread(std::move(owned), "c1", 20ms);
  const QueueGeneration placed{"placed", 1, 1}, deleted{"deleted", 1, 1};
  ASSERT_TRUE(etcd.Put(DrainKey("c1", deleted), EncodeDrainReport({"old"})).ok());
  thread.ReportDrains({{placed, {"billing"}}, {deleted, {"billing"}}});
  ASSERT_TRUE(WaitFor([&] {
    auto read = etcd.Get(DrainKey("c1", placed));
    return read.ok() && !read->kvs.empty();
  }));
  ASSERT_TRUE(thread.WaitForFreshMap(5s));  // a poll after the one that wrote
  auto stale = etcd.Get(DrainKey("c1", deleted));
  ASSERT_TRUE(stale.ok());
  EXPECT_TRUE(stale->kvs.empty()) << "a report of a topic no longer placed was written";
}

}  // namespace
}  // namespace txmq::cluster
