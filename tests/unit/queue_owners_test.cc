// Queue ownership in a consumer group (broker/src/queue_owners.h): the
// sharing rule on its own, then the broker's delivery on a fake clock, where
// the promise is that two consumers never hold messages of one queue at
// once, and that a queue changes hands only when its old owner let go.
#include "broker/src/queue_owners.h"

#include <gtest/gtest.h>

#include <map>
#include <set>

#include "protocol/src/util.h"
#include "tests/unit/broker_harness.h"

namespace txmq::broker {
namespace {

using namespace std::chrono_literals;

// ---- the sharing rule ----

Subscription Queues(uint32_t n) {
  Subscription sub;
  sub.queues.resize(n);
  for (uint32_t q = 0; q < n; ++q) sub.queues[q].queue = q;
  return sub;
}

std::map<std::string, int> Counts(const Subscription& sub) {
  std::map<std::string, int> counts;
  for (const QueueCursor& c : sub.queues) ++counts[c.owner];
  return counts;
}

TEST(QueueSharing, EveryQueueHasOneOwnerAndSharesDifferByAtMostOne) {
  for (uint32_t n : {1u, 2u, 4u, 7u, 16u}) {
    Subscription sub = Queues(n);
    const SteadyTime now{};
    for (int m = 1; m <= 5; ++m) {
      EXPECT_TRUE(JoinOwners(sub, "orders", {"c" + std::to_string(m)}, now));
      std::map<std::string, int> counts = Counts(sub);
      EXPECT_FALSE(counts.contains(""))
          << n << " queues, " << m << " members: a queue has no owner";
      int lo = INT32_MAX, hi = 0, total = 0;
      for (const auto& [member, held] : sub.members) {
        const int k = counts.contains(member) ? counts[member] : 0;
        lo = std::min(lo, k);
        hi = std::max(hi, k);
        total += k;
      }
      EXPECT_EQ(total, static_cast<int>(n));
      EXPECT_LE(hi - lo, 1) << n << " queues, " << m << " members";
    }
  }
}

TEST(QueueSharing, AJoinMovesOnlyTheNewcomersShareAndALeaveOnlyTheLeaversQueues) {
  Subscription sub = Queues(12);
  const SteadyTime now{};
  JoinOwners(sub, "orders", {"a"}, now);
  JoinOwners(sub, "orders", {"b"}, now);
  std::vector<std::string> before;
  for (const QueueCursor& c : sub.queues) before.push_back(c.owner);

  JoinOwners(sub, "orders", {"c"}, now);
  int moved = 0;
  for (uint32_t q = 0; q < 12; ++q) {
    if (sub.queues[q].owner != before[q]) {
      ++moved;
      EXPECT_EQ(sub.queues[q].owner, "c") << "queue " << q << " moved between old members";
    }
  }
  EXPECT_EQ(moved, 4);

  std::vector<std::string> with_c;
  for (const QueueCursor& c : sub.queues) with_c.push_back(c.owner);
  EXPECT_TRUE(LeaveOwners(sub, "orders", "c"));
  EXPECT_FALSE(LeaveOwners(sub, "orders", "c")) << "leaving twice";
  for (uint32_t q = 0; q < 12; ++q) {
    if (with_c[q] != "c") {
      EXPECT_EQ(sub.queues[q].owner, with_c[q]) << "queue " << q << " moved";
    }
  }
  EXPECT_EQ(Counts(sub), (std::map<std::string, int>{{"a", 6}, {"b", 6}}));

  EXPECT_TRUE(LeaveOwners(sub, "orders", "a"));
  EXPECT_TRUE(LeaveOwners(sub, "orders", "b"));
  EXPECT_EQ(Counts(sub), (std::map<std::string, int>{{"", 12}})) << "nobody left: no owner";
}

TEST(QueueSharing, AnOwnerOverItsShareGivesUpIdleQueuesBeforeBusyOnes) {
  Subscription sub = Queues(4);
  JoinOwners(sub, "orders", {"a"}, SteadyTime{});
  sub.queues[2].holders["a"] = 1;  // a holds messages of queues 2 and 3
  sub.queues[3].holders["a"] = 3;
  JoinOwners(sub, "orders", {"b"}, SteadyTime{});
  EXPECT_EQ(sub.queues[2].owner, "a");
  EXPECT_EQ(sub.queues[3].owner, "a");
  EXPECT_EQ(sub.queues[0].owner, "b");
  EXPECT_EQ(sub.queues[1].owner, "b");
}

// In a cluster a broker has a cursor for every queue of a topic but serves
// only its group's: only those get an owner here.
TEST(QueueSharing, OnlyTheQueuesThisBrokerServesGetAnOwner) {
  Subscription sub = Queues(4);
  const std::vector<uint32_t> served{1, 3};
  EXPECT_TRUE(JoinOwners(sub, "orders", {"a"}, SteadyTime{}, served));
  EXPECT_TRUE(JoinOwners(sub, "orders", {"b"}, SteadyTime{}, served));
  EXPECT_EQ(sub.queues[0].owner, "");
  EXPECT_EQ(sub.queues[2].owner, "");
  EXPECT_NE(sub.queues[1].owner, "");
  EXPECT_NE(sub.queues[3].owner, "");
  EXPECT_FALSE(JoinOwners(sub, "orders", {"a"}, SteadyTime{}, served)) << "nothing changed";
  // The placement learnt later (a topic recovered before it was known).
  Subscription late = Queues(4);
  JoinOwners(late, "orders", {"a"}, SteadyTime{});
  JoinOwners(late, "orders", {"b"}, SteadyTime{});
  EXPECT_TRUE(JoinOwners(late, "orders", {"a"}, SteadyTime{}, served)) << "shared anew";
  EXPECT_EQ(late.queues[0].owner, "");
  EXPECT_EQ(late.queues[2].owner, "");
  EXPECT_NE(late.queues[1].owner, "");
  EXPECT_NE(late.queues[3].owner, "");
}

// Across broker groups a consumer is one connection at each group (its own
// routing id there), and every group shares only its own queues. Together
// they must still give every consumer instance its share of the whole
// topic: with a queue per group and two consumers, each gets one, not one
// both and the other none.
TEST(QueueSharing, AcrossBrokerGroupsEachInstanceGetsItsShareOfTheWholeTopic) {
  int cases = 0;
  for (uint32_t n : {2u, 3u, 4u, 5u, 7u, 8u, 16u}) {
    for (uint32_t groups : {2u, 3u}) {
      if (groups > n) continue;
      for (int k = 1; k <= 5; ++k) {
        // Queue q is served by group q % groups (placement is the
        // cluster's business; any split will do).
        std::vector<Subscription> at(groups, Queues(n));
        for (uint32_t g = 0; g < groups; ++g) {
          std::vector<uint32_t> served;
          for (uint32_t q = g; q < n; q += groups) served.push_back(q);
          for (int i = 0; i < k; ++i) {
            const std::string instance = "consumer-" + std::to_string(i);
            JoinOwners(at[g], "orders",
                       {.client = instance + "@" + std::to_string(g), .instance = instance},
                       SteadyTime{}, served);
          }
        }
        std::map<std::string, int> held;  // by instance
        for (uint32_t q = 0; q < n; ++q) {
          int owners = 0;
          for (uint32_t g = 0; g < groups; ++g) {
            const std::string& owner = at[g].queues[q].owner;
            if (owner.empty()) continue;
            ++owners;
            EXPECT_EQ(owner.substr(owner.find('@') + 1), std::to_string(q % groups))
                << "queue " << q << " owned at a group that does not serve it";
            ++held[owner.substr(0, owner.find('@'))];
          }
          EXPECT_EQ(owners, 1) << n << " queues, " << groups << " groups, " << k
                               << " consumers: queue " << q;
        }
        int lo = INT32_MAX, hi = 0;
        for (int i = 0; i < k; ++i) {
          const int h = held["consumer-" + std::to_string(i)];
          lo = std::min(lo, h);
          hi = std::max(hi, h);
        }
        EXPECT_LE(hi - lo, 1) << n << " queues, " << groups << " groups, " << k << " consumers";
        ++cases;
      }
    }
  }
  EXPECT_GT(cases, 50);
}

// A consumer whose connection at a group was replaced (its group's leader
// moved) may briefly have two there: its queues go to the newer one.
TEST(QueueSharing, AcrossBrokerGroupsAnInstancesQueuesGoToItsConnectionSeenLast) {
  Subscription sub = Queues(4);
  const std::vector<uint32_t> served{0, 2};
  const SteadyTime t0{};
  JoinOwners(sub, "orders", {.client = "old", .instance = "c"}, t0, served);
  EXPECT_EQ(sub.queues[0].owner, "old");
  EXPECT_EQ(sub.queues[2].owner, "old");
  JoinOwners(sub, "orders", {.client = "new", .instance = "c"}, t0 + 1s, served);
  EXPECT_EQ(sub.queues[0].owner, "new");
  EXPECT_EQ(sub.queues[2].owner, "new");
  EXPECT_TRUE(LeaveOwners(sub, "orders", "new"));
  EXPECT_EQ(sub.queues[0].owner, "old");
}

TEST(QueueSharing, AQueueIsTakeableByItsOwnerOnlyOnceNobodyElseHoldsIt) {
  QueueCursor c;
  c.owner = "b";
  EXPECT_TRUE(MayTake(c, "b"));
  EXPECT_FALSE(MayTake(c, "a"));
  c.holders["a"] = 1;
  EXPECT_FALSE(MayTake(c, "b")) << "a still holds a message of the queue";
  EXPECT_FALSE(MayTake(c, "a")) << "a no longer owns it";
  c.holders.erase("a");
  c.holders["b"] = 2;
  EXPECT_TRUE(MayTake(c, "b"));
}

// ---- the broker's delivery ----

constexpr char kWorkers[] = "workers";
constexpr char kOrders[] = "orders";

BrokerOptions OwnerOptions() {
  BrokerOptions o;
  o.default_queues = 4;
  o.max_message_bytes = 1u << 20;
  o.segment_bytes = 8u << 20;
  o.retry_backoff = {1s};
  o.default_visibility_timeout = 30s;
  o.client_timeout = 10s;
  o.max_long_poll = 20s;
  o.cleanup_interval = 1s;
  return o;
}

// A key whose messages go to `queue` of a 4-queue topic.
std::string KeyOn(uint32_t queue) {
  for (int i = 0;; ++i) {
    std::string key = "k" + std::to_string(i);
    if (StableHash(key) % 4 == queue) return key;
  }
}

class QueueOwners : public ::testing::Test {
 protected:
  QueueOwners() : h_(OwnerOptions()) {}

  // `per_queue` messages on each of the 4 queues, ids "q<queue>-<i>".
  void Fill(int per_queue, int from = 0) {
    for (int i = from; i < from + per_queue; ++i) {
      for (uint32_t q = 0; q < 4; ++q) {
        h_.Send(kOrders, "q" + std::to_string(q) + "-" + std::to_string(i), 0, KeyOn(q));
      }
    }
  }

  std::vector<Pulled> PullNow(const std::string& client, uint32_t max = 32) {
    auto got = h_.Pull(client, kWorkers, kOrders, 60'000, 0, max);
    EXPECT_TRUE(got.has_value());
    return got.value_or(std::vector<Pulled>{});
  }

  static std::set<uint32_t> QueuesOf(const std::vector<Pulled>& pulled) {
    std::set<uint32_t> queues;
    for (const Pulled& p : pulled) queues.insert(p.receipt.queue);
    return queues;
  }

  // Who holds leases on each queue now: never two clients on one queue.
  void ExpectOneHolderPerQueue() {
    std::map<uint32_t, std::set<std::string>> holders;
    for (const auto& [id, ref] : h_.groups().leases()) holders[ref.queue].insert(ref.client);
    for (const auto& [queue, clients] : holders) {
      EXPECT_EQ(clients.size(), 1u)
          << "queue " << queue << " is held by " << clients.size() << " consumers at once";
    }
  }

  BrokerHarness h_;
};

TEST_F(QueueOwners, TwoConsumersEachTakeTheirOwnQueuesAndTogetherAll) {
  Fill(3);
  // Both are members before either takes anything.
  auto first_a = h_.Pull("a", kWorkers, kOrders, 60'000, 0, 1);
  auto first_b = h_.Pull("b", kWorkers, kOrders, 60'000, 0, 1);
  ASSERT_TRUE(first_a && first_b);
  std::vector<Pulled> a = PullNow("a"), b = PullNow("b");
  a.insert(a.end(), first_a->begin(), first_a->end());
  b.insert(b.end(), first_b->begin(), first_b->end());
  ExpectOneHolderPerQueue();
  std::set<uint32_t> qa = QueuesOf(a), qb = QueuesOf(b);
  EXPECT_EQ(qa.size(), 2u);
  EXPECT_EQ(qb.size(), 2u);
  for (uint32_t q : qa) EXPECT_FALSE(qb.contains(q)) << "queue " << q << " went to both";
  EXPECT_EQ(a.size() + b.size(), 12u);
}

TEST_F(QueueOwners, ANewConsumerGetsAQueueOnlyAfterItsOldOwnerAckedWhatItHeld) {
  Fill(1);
  std::vector<Pulled> held = PullNow("a");  // the one message of each queue
  ASSERT_EQ(QueuesOf(held).size(), 4u);
  Fill(1, 1);
  // b joins: half the queues are now b's, but a still holds a message of each.
  EXPECT_FALSE(h_.Pull("b", kWorkers, kOrders, 60'000, 20'000).has_value()) << "b waits";
  std::vector<Pulled> more_a = PullNow("a");
  ExpectOneHolderPerQueue();
  std::set<uint32_t> kept = QueuesOf(more_a);
  EXPECT_EQ(kept.size(), 2u) << "a takes more only from the queues it kept";

  const GroupState* g = h_.groups().Find(kWorkers);
  ASSERT_NE(g, nullptr);
  const Subscription& sub = g->subscriptions.at(kOrders);
  for (const Pulled& p : held) {
    if (kept.contains(p.receipt.queue)) continue;
    EXPECT_EQ(sub.queues[p.receipt.queue].owner, "b");
    EXPECT_TRUE(h_.TakePulled("b").empty()) << "handed over while a held queue " << p.receipt.queue;
    EXPECT_EQ(h_.Ack("a", kWorkers, p.receipt).first, 1u);
    h_.Housekeeping();
    auto served = h_.TakePulled("b");
    ASSERT_EQ(served.size(), 1u) << "b's waiting pull is served once a let go of queue "
                                 << p.receipt.queue;
    EXPECT_EQ(QueuesOf(served[0]), std::set<uint32_t>{p.receipt.queue});
    ASSERT_FALSE(served[0].empty());
    EXPECT_EQ(served[0][0].id, "q" + std::to_string(p.receipt.queue) + "-1")
        << "the next message of the queue, in order";
    ExpectOneHolderPerQueue();
    EXPECT_FALSE(h_.Pull("b", kWorkers, kOrders, 60'000, 20'000).has_value());
  }
}

TEST_F(QueueOwners, ALeavingConsumersQueuesGoToTheOthersWithWhatItGaveBackFirst) {
  Fill(2);
  PullNow("a", 1);
  PullNow("b", 1);
  std::vector<Pulled> a = PullNow("a");
  std::vector<Pulled> b = PullNow("b");
  ASSERT_EQ(a.size() + b.size(), 6u);
  EXPECT_FALSE(h_.Pull("b", kWorkers, kOrders, 60'000, 20'000).has_value())
      << "nothing left: b waits";

  h_.delivery().ReleaseClient("a", "a", /*failed=*/false);  // goodbye: leases given back
  h_.Housekeeping();
  std::vector<Pulled> given_back;
  for (auto& batch : h_.TakePulled("b")) {
    given_back.insert(given_back.end(), batch.begin(), batch.end());
  }
  ExpectOneHolderPerQueue();
  EXPECT_EQ(given_back.size(), a.size() + 1) << "b's waiting pull gets what a held";
  const Subscription& sub = h_.groups().Find(kWorkers)->subscriptions.at(kOrders);
  for (const QueueCursor& c : sub.queues) EXPECT_EQ(c.owner, "b") << "queue " << c.queue;
}

TEST_F(QueueOwners, AMemberSilentPastLongPollAndClientTimeoutLeavesItsQueues) {
  Fill(2);
  PullNow("a", 1);
  auto b = PullNow("b", 1);
  ASSERT_EQ(b.size(), 1u);
  EXPECT_EQ(h_.Ack("b", kWorkers, b[0].receipt).first, 1u);
  const Subscription& sub = h_.groups().Find(kWorkers)->subscriptions.at(kOrders);
  std::set<uint32_t> of_b;
  for (const QueueCursor& c : sub.queues) {
    if (c.owner == "b") of_b.insert(c.queue);
  }
  ASSERT_EQ(of_b.size(), 2u);
  // b falls silent (no pull, no extension) but is not disconnected; a
  // keeps pulling (its queues run dry).
  h_.Advance(15s);
  for (const Pulled& p : PullNow("a")) EXPECT_FALSE(of_b.contains(p.receipt.queue));
  h_.Advance(14s);
  EXPECT_TRUE(PullNow("a").empty()) << "29 s: b's queues are still b's";
  h_.Advance(2s);  // past max_long_poll + client_timeout (30 s) of silence
  std::vector<Pulled> a = PullNow("a");
  EXPECT_EQ(QueuesOf(a), of_b) << "b's queues came to a";
  for (const QueueCursor& c : sub.queues) EXPECT_EQ(c.owner, "a");
}

TEST_F(QueueOwners, AMemberWhoseLeasesAreExtendedStaysAMember) {
  Fill(2);
  auto a_held = PullNow("a", 1);
  auto b = PullNow("b", 1);
  ASSERT_EQ(a_held.size(), 1u);
  ASSERT_EQ(b.size(), 1u);
  for (int i = 0; i < 4; ++i) {
    h_.Advance(10s);
    EXPECT_EQ(h_.Extend("a", kWorkers, a_held[0].receipt, 60'000).state,
              wire::LeaseState::EXTENDED);
    EXPECT_EQ(h_.Extend("b", kWorkers, b[0].receipt, 60'000).state, wire::LeaseState::EXTENDED);
  }
  std::set<uint32_t> a = QueuesOf(PullNow("a"));
  EXPECT_EQ(a.size(), 2u) << "40 s without a pull, but busy: b keeps its queues";
  ExpectOneHolderPerQueue();
}

TEST_F(QueueOwners, ARedeliveryGoesToTheQueuesOwner) {
  Fill(1);
  PullNow("a", 1);
  PullNow("b", 1);
  const GroupState* g = h_.groups().Find(kWorkers);
  ASSERT_NE(g, nullptr);
  const Subscription& sub = g->subscriptions.at(kOrders);
  std::vector<Pulled> a = PullNow("a");
  ASSERT_FALSE(a.empty());
  const Pulled failed = a.front();
  ASSERT_EQ(sub.queues[failed.receipt.queue].owner, "a");
  EXPECT_EQ(h_.Nack("a", kWorkers, failed.receipt).requeued, 1u);
  h_.Advance(1s);  // the backoff: due now
  for (int i = 0; i < 3; ++i) {
    for (const Pulled& p : PullNow("b")) {
      EXPECT_NE(p.id, failed.id) << "b was handed a redelivery of a's queue";
    }
  }
  bool again = false;
  for (const Pulled& p : PullNow("a")) again |= p.id == failed.id;
  EXPECT_TRUE(again) << "the owner gets its redelivery";
}

// A consumer shutting down gives back what it held; a pull it still had in
// flight may take some of that again before its goodbye gives it back once
// more. Those must not fall behind the rest of their queue: a redelivery
// given back unprocessed keeps its place in the schedule.
TEST_F(QueueOwners, ARedeliveryGivenBackAgainKeepsItsPlaceInItsQueue) {
  for (int i = 0; i < 3; ++i) h_.Send(kOrders, "m" + std::to_string(i), 0, KeyOn(0));
  ASSERT_EQ(PullNow("a").size(), 3u);
  h_.delivery().ReleaseClient("a", "a", /*failed=*/false);  // m0..m2 given back
  h_.Advance(5ms);
  auto first = PullNow("b", 1);
  ASSERT_EQ(first.size(), 1u);
  EXPECT_EQ(first[0].id, "m0");
  h_.Advance(5ms);
  h_.delivery().ReleaseClient("b", "b", /*failed=*/false);  // m0 given back again, later
  std::vector<std::string> order;
  for (const Pulled& p : PullNow("c")) order.push_back(p.id);
  EXPECT_EQ(order, (std::vector<std::string>{"m0", "m1", "m2"}));
}

}  // namespace
}  // namespace txmq::broker
