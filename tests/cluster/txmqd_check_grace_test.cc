// Transaction checks across a failover. A new leader knows no producer
// (registrations are not replicated: they are connections), so like a
// restarted broker it gives producers a grace period (client timeout plus
// their reconnect allowance) before a check that finds nobody counts. What
// is promised: an open transaction whose producers come back within the
// grace is decided by them, not by the stuck policy.
#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "tests/cluster/txmqd_group_fixture.h"
#include "txmq/transaction_producer.h"

namespace txmq {
namespace {

using namespace std::chrono_literals;
using testing::Node;

class TxmqdCheckGrace : public testing::TxmqdGroupFixture {};

TEST_F(TxmqdCheckGrace, ProducersThatComeBackWithinTheGraceDecideTheNextLeadersChecks) {
  MakeNodes(3);
  // A check every second, and one check without a producer is enough to
  // make the transaction stuck and rolled back: only the grace stands
  // between a failover and a rollback nobody decided.
  const std::vector<std::string> strict_checks = {
      "--transaction-timeout", "1s", "--check-interval", "1s",      "--check-interval-max", "1s",
      "--check-max",           "1",  "--stuck-policy",   "rollback"};
  for (Node& n : nodes_) StartNode(n, 2, strict_checks);
  Node* leader = WaitForLeader();
  ASSERT_NE(leader, nullptr);

  {
    // The producer opens a transaction, leaves its outcome unknown, and
    // goes away; the leader dies before its first check is due.
    TransactionProducer gone({.broker = AllUrls(), .group = "payments", .send_timeout = 10s},
                             [](const CheckRequest&) { return TxState::kUnknown; });
    ASSERT_TRUE(gone.Start().ok());
    auto half = gone.SendInTransaction({.topic = "paid", .body = "decided later", .id = "late"},
                                       [](const Message&) { return TxState::kUnknown; });
    ASSERT_TRUE(half.ok()) << half.status.ToString();
  }
  Kill9(*leader);
  Node* next = WaitForLeader(30s);
  ASSERT_NE(next, nullptr);

  // Checks fall due on the new leader while no producer of the group is
  // there; the group's producer is back two seconds later, well within
  // the grace (client timeout 3 s + 3 s).
  std::this_thread::sleep_for(2s);
  std::atomic<int> checks{0};
  TransactionProducer back({.broker = AllUrls(), .group = "payments", .send_timeout = 10s},
                           [&](const CheckRequest&) {
                             ++checks;
                             return TxState::kCommit;
                           });
  ASSERT_TRUE(back.Start().ok());
  auto delivered = testing::DrainTopic(AllUrls(), "paid", 1, 300ms, 30s);
  EXPECT_EQ(delivered["late"], 1)
      << "the next leader decided the transaction before its producer could come back; its log:\n"
      << testing::ReadFile(dir_.Sub(next->name + ".log"));
  EXPECT_GE(checks.load(), 1);
}

}  // namespace
}  // namespace txmq
