// Transaction checks across a broker restart. A restarted txmqd knows no
// producer until they reconnect: during the grace period (client timeout +
// 3 s) a due check of a group with no live producer waits instead of
// counting, and an attempt that finds no producer never uses up
// --check-max; a group that stays away for --check-max attempts still ends
// stuck ("no producer"), where the stuck policy applies.
#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <sstream>
#include <thread>

#include "protocol/src/util.h"
#include "tests/testutil/admin_client.h"
#include "tests/testutil/testutil.h"
#include "txmq/transaction_producer.h"

namespace txmq {
namespace {

using namespace std::chrono_literals;
using testing::AdminClient;
using testing::BrokerProcess;
using testing::TempDir;
using testing::WaitFor;

// First check 1 s after the half, the next 3 s after that; a producer is
// forgotten after 6 s of silence, so the grace after a start is 9 s.
const std::vector<std::string> kTimings = {"--transaction-timeout", "1s", "--check-interval", "3s",
                                           "--check-interval-max",  "3s", "--check-timeout",  "2s",
                                           "--client-timeout",      "6s"};

struct PolicyCase {
  std::string name;
  std::vector<std::string> args;
};

void PrintTo(const PolicyCase& c, std::ostream* os) { *os << c.name; }

class ChecksAfterRestart : public ::testing::TestWithParam<PolicyCase> {};

TEST_P(ChecksAfterRestart, TheReconnectingProducerDecidesAndNoCheckIsWasted) {
  TempDir dir;
  std::vector<std::string> args = kTimings;
  args.insert(args.end(), GetParam().args.begin(), GetParam().args.end());
  BrokerProcess broker(dir.Sub("data"), args);
  ASSERT_TRUE(broker.Start());

  // Its local transactions are undecided at the first check; once the
  // broker is back they have an outcome: even bodies commit, odd roll back.
  std::atomic<bool> decided{false};
  std::atomic<int> checks_after_restart{0};
  TransactionProducer p({.broker = broker.endpoint(), .group = "shop"}, [&](const CheckRequest& c) {
    if (!decided) return TxState::kUnknown;
    ++checks_after_restart;
    return std::stoi(c.message().body) % 2 == 0 ? TxState::kCommit : TxState::kRollback;
  });
  ASSERT_TRUE(p.Start().ok());
  constexpr int kTransactions = 10;
  std::map<std::string, int> body_of;  // transaction id -> body
  std::set<std::string> even_messages;
  for (int i = 0; i < kTransactions; ++i) {
    auto r = p.SendInTransaction({.topic = "orders", .body = std::to_string(i)},
                                 [](const Message&) { return TxState::kUnknown; });
    ASSERT_TRUE(r.ok()) << r.status.ToString();
    body_of[r.transaction_id] = i;
    if (i % 2 == 0) even_messages.insert(r.message_ids[0]);
  }
  {
    AdminClient admin(broker.endpoint());
    ASSERT_TRUE(WaitFor(
        [&] {
          auto open = admin.ListTransactions();
          return open.size() == kTransactions &&
                 std::all_of(open.begin(), open.end(), [](const testing::TxInfo& t) {
                   return t.check_count == 1 && t.last_answer == wire::CheckAnswer::UNKNOWN;
                 });
        },
        20s))
        << "every transaction had one UNKNOWN answer";
  }
  broker.Kill9();
  // The second check falls due while the broker is down: it is due the
  // moment the broker serves again, before any producer can be back.
  std::this_thread::sleep_for(3500ms);
  decided = true;
  ASSERT_TRUE(broker.Start());

  AdminClient admin(broker.endpoint());
  ASSERT_TRUE(WaitFor([&] { return admin.OpenTransactions() == 0; }, 60s))
      << admin.OpenTransactions() << " transactions still open";
  EXPECT_GE(checks_after_restart, kTransactions) << "checks reached the reconnected producer";
  for (const auto& [tx_id, body] : body_of) {
    auto info = admin.Show(tx_id);
    ASSERT_TRUE(info.ok()) << info.status().ToString();
    EXPECT_EQ(info->state, body % 2 == 0 ? wire::TxState::COMMITTED : wire::TxState::ROLLED_BACK)
        << tx_id << " resolved by " << info->resolved_by;
    EXPECT_NE(info->resolved_by.find("check answer from " + p.client_id()), std::string::npos)
        << info->resolved_by;
    EXPECT_EQ(info->check_count, 2u) << "one check before the restart, one after; none wasted";
    EXPECT_EQ(info->no_producer_checks, 0u);
  }
  EXPECT_EQ(testing::ReadFile(broker.log_path()).find("STUCK"), std::string::npos)
      << "nothing was stuck for lack of a producer that was on its way back";
  auto seen = testing::DrainTopic(broker.endpoint(), "orders", even_messages.size());
  std::set<std::string> delivered;
  for (const auto& [id, n] : seen) {
    delivered.insert(id);
    EXPECT_EQ(n, 1) << id;
  }
  EXPECT_EQ(delivered, even_messages);
}

INSTANTIATE_TEST_SUITE_P(
    Policies, ChecksAfterRestart,
    ::testing::Values(PolicyCase{"CheckMax2Rollback",
                                 {"--check-max", "2", "--stuck-policy", "rollback"}},
                      PolicyCase{"CheckMax2Park", {"--check-max", "2", "--stuck-policy", "park"}},
                      PolicyCase{"Defaults", {}}),
    [](const ::testing::TestParamInfo<PolicyCase>& info) { return info.param.name; });

TEST(ChecksAfterRestart, AGroupThatStaysAwayIsStuckWithNoProducerOnlyAfterTheGrace) {
  TempDir dir;
  std::vector<std::string> args = kTimings;
  args.insert(args.end(), {"--check-max", "2", "--stuck-policy", "rollback"});
  BrokerProcess broker(dir.Sub("data"), args);
  ASSERT_TRUE(broker.Start());
  // The group's only producer dies holding an undecided transaction.
  std::istringstream ready(
      testing::RunUntilReadyThenKill({testing::BinPath("txmq-test-txtool"), "half",
                                      broker.endpoint(), "gone", "orders", "1", dir.Sub("ready")},
                                     dir.Sub("ready"), dir.Sub("tool.log")));
  std::string tx_id, message_id;
  ready >> tx_id >> message_id;
  ASSERT_FALSE(message_id.empty());
  broker.Kill9();
  ASSERT_TRUE(broker.Start());
  const auto serving = SteadyClock::now();

  AdminClient admin(broker.endpoint());
  testing::TxInfo info;
  ASSERT_TRUE(WaitFor(
      [&] {
        auto shown = admin.Show(tx_id);
        if (shown.ok()) info = *shown;
        return shown.ok() && info.state != wire::TxState::PREPARED;
      },
      60s));
  // Grace 6 s + 3 s; then two attempts 3 s apart.
  EXPECT_GE(SteadyClock::now() - serving, 9s) << "decided inside the grace";
  EXPECT_EQ(info.state, wire::TxState::ROLLED_BACK);
  EXPECT_NE(info.resolved_by.find("stuck policy"), std::string::npos) << info.resolved_by;
  EXPECT_EQ(info.last_answer, wire::CheckAnswer::NO_PRODUCER);
  EXPECT_EQ(info.check_count, 0u) << "no producer ever got a check";
  EXPECT_GE(info.no_producer_checks, 2u);
  EXPECT_NE(info.last_error.find("no live producer"), std::string::npos) << info.last_error;
  EXPECT_NE(testing::ReadFile(broker.log_path()).find("attempts with no live producer"),
            std::string::npos);
}

}  // namespace
}  // namespace txmq
