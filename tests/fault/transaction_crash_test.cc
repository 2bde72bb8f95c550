// Transactions when processes die: the producer right after its half
// message, the broker with open transactions, and both, repeatedly, under
// a transactional copier.
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include "protocol/src/util.h"
#include "tests/fault/decisions.h"
#include "tests/testutil/admin_client.h"
#include "tests/testutil/testutil.h"
#include "txmq/consumer.h"
#include "txmq/transaction_producer.h"

namespace txmq {
namespace {

using namespace std::chrono_literals;
using testing::AdminClient;
using testing::BrokerProcess;
using testing::Process;
using testing::TempDir;
using testing::WaitFor;

const std::vector<std::string> kFastChecks = {
    "--transaction-timeout", "1s", "--check-interval", "300ms", "--check-interval-max", "1s",
    "--check-timeout",       "1s", "--check-max",      "1000",  "--client-timeout",     "2s"};

std::unique_ptr<Process> SpawnTool(const std::vector<std::string>& args, const std::string& log) {
  std::vector<std::string> argv = {testing::BinPath("txmq-test-txtool")};
  argv.insert(argv.end(), args.begin(), args.end());
  return Process::Spawn(argv, log);
}

TEST(TransactionCrash, ProducerKilledAfterTheHalfIsResolvedByAnotherMember) {
  TempDir dir;
  BrokerProcess broker(dir.Sub("data"), kFastChecks);
  ASSERT_TRUE(broker.Start());
  // The tool dies holding an undecided transaction.
  std::istringstream ready(
      testing::RunUntilReadyThenKill({testing::BinPath("txmq-test-txtool"), "half",
                                      broker.endpoint(), "shop", "orders", "1", dir.Sub("ready")},
                                     dir.Sub("ready"), dir.Sub("tool.log")));
  std::string tx_id, message_id;
  ready >> tx_id >> message_id;
  ASSERT_FALSE(message_id.empty());

  TransactionProducer survivor(
      {.broker = broker.endpoint(), .group = "shop"}, [&](const CheckRequest& c) {
        return c.message().id == message_id ? TxState::kCommit : TxState::kUnknown;
      });
  ASSERT_TRUE(survivor.Start().ok());
  auto seen = testing::DrainTopic(broker.endpoint(), "orders", 1);
  EXPECT_EQ(seen[message_id], 1);
  auto info = AdminClient(broker.endpoint()).Show(tx_id);
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->state, wire::TxState::COMMITTED);
  EXPECT_NE(info->resolved_by.find(survivor.client_id()), std::string::npos) << info->resolved_by;
}

TEST(TransactionCrash, BrokerKilledWithAThousandOpenTransactions) {
  TempDir dir;
  BrokerProcess broker(dir.Sub("data"), kFastChecks);
  ASSERT_TRUE(broker.Start());
  std::atomic<bool> decide{false};
  TransactionProducer p({.broker = broker.endpoint(), .group = "bulk"}, [&](const CheckRequest& c) {
    if (!decide) return TxState::kUnknown;
    return std::stoi(c.message().body) % 2 == 0 ? TxState::kCommit : TxState::kRollback;
  });
  ASSERT_TRUE(p.Start().ok());
  std::mutex mu;
  std::set<std::string> even;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = t; i < 1000; i += 4) {
        auto r = p.SendInTransaction({.topic = "bulk", .body = std::to_string(i)},
                                     [](const Message&) { return TxState::kUnknown; });
        ASSERT_TRUE(r.ok()) << r.status.ToString();
        std::lock_guard<std::mutex> lock(mu);
        if (i % 2 == 0) even.insert(r.message_ids[0]);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(AdminClient(broker.endpoint()).ListTransactions().size(), 1000u);

  broker.Kill9();
  ASSERT_TRUE(broker.Start());
  AdminClient admin(broker.endpoint());
  EXPECT_EQ(admin.ListTransactions().size(), 1000u) << "every open transaction survived";
  decide = true;
  ASSERT_TRUE(WaitFor([&] { return admin.OpenTransactions() == 0; }, 60s))
      << admin.OpenTransactions() << " still open";
  auto seen = testing::DrainTopic(broker.endpoint(), "bulk", even.size());
  std::set<std::string> delivered;
  for (const auto& [id, n] : seen) {
    delivered.insert(id);
    EXPECT_EQ(n, 1) << id;
  }
  EXPECT_EQ(delivered, even);
}

TEST(TransactionCrash, AGroupWithNoLiveProducerIsLoggedOncePerIntervalNotPerTransaction) {
  TempDir dir;
  BrokerProcess broker(dir.Sub("data"), {"--transaction-timeout", "300ms", "--check-interval",
                                         "300ms", "--check-interval-max", "300ms", "--check-max",
                                         "1000", "--client-timeout", "2s"});
  ASSERT_TRUE(broker.Start());
  {
    TransactionProducer p({.broker = broker.endpoint(), .group = "gone"},
                          [](const CheckRequest&) { return TxState::kUnknown; });
    ASSERT_TRUE(p.Start().ok());
    for (int i = 0; i < 50; ++i) {
      ASSERT_TRUE(
          p.SendInTransaction({.topic = "t", .body = std::to_string(i)}, [](const Message&) {
             return TxState::kUnknown;
           }).ok());
    }
  }  // the group's only producer leaves; 50 transactions come due every 300 ms
  const std::string needle = "producer group 'gone' has";
  auto lines = [&] {
    const std::string log = testing::ReadFile(broker.log_path());
    size_t n = 0;
    for (size_t at = log.find(needle); at != std::string::npos; at = log.find(needle, at + 1)) ++n;
    return n;
  };
  ASSERT_TRUE(WaitFor([&] { return lines() >= 1; }));
  std::this_thread::sleep_for(3s);
  // Ten intervals: about ten lines (one per interval), not 50 per round.
  EXPECT_LE(lines(), 13u);
  EXPECT_GE(lines(), 3u) << "it keeps saying so while it lasts";
  EXPECT_NE(testing::ReadFile(broker.log_path()).find("but no live producer that answers checks"),
            std::string::npos);
}

TEST(TransactionCrash, CopierDeliversExactlyTheCommittedSet) {
  TempDir dir;
  BrokerProcess broker(dir.Sub("data"), kFastChecks);
  ASSERT_TRUE(broker.Start());
  const std::string decisions = dir.Sub("decisions");
  std::atomic<bool> copier_alive{true};
  // Another member of the group: once the copier is gone it answers from
  // the same local database, and an undecided transaction can no longer
  // commit, so it rolls back.
  TransactionProducer standby({.broker = broker.endpoint(), .group = "copier"},
                              [&](const CheckRequest& c) {
                                auto known = testing::ReadDecisions(decisions);
                                auto it = known.find(c.message().id);
                                if (it != known.end()) return it->second;
                                return copier_alive ? TxState::kUnknown : TxState::kRollback;
                              });
  ASSERT_TRUE(standby.Start().ok());
  auto lines = [&] { return testing::ReadDecisions(decisions).size(); };

  auto first =
      SpawnTool({"copier", broker.endpoint(), "copier", "copy", "0", "3000", "4", decisions},
                dir.Sub("copier1.log"));
  ASSERT_TRUE(WaitFor([&] { return lines() >= 750; }, 120s));
  broker.Kill9();  // first broker crash, mid-stream
  ASSERT_TRUE(broker.Start());
  ASSERT_TRUE(WaitFor([&] { return lines() >= 2400; }, 120s));
  first->Signal(SIGKILL);  // the producer dies with transactions in every phase
  first->Wait(10s);

  auto second =
      SpawnTool({"copier", broker.endpoint(), "copier", "copy", "3000", "3000", "4", decisions},
                dir.Sub("copier2.log"));
  ASSERT_TRUE(WaitFor([&] { return lines() >= 3600; }, 120s));
  broker.Kill9();  // second broker crash
  ASSERT_TRUE(broker.Start());
  ASSERT_TRUE(second->Wait(180s).has_value()) << "copier did not finish";
  copier_alive = false;

  AdminClient admin(broker.endpoint());
  if (!WaitFor([&] { return admin.OpenTransactions() == 0; }, 120s)) {
    auto open = admin.ListTransactions();
    for (size_t i = 0; i < open.size() && i < 5; ++i) {
      ADD_FAILURE() << "still open: " << open[i].id << " " << open[i].message_ids[0] << " checks "
                    << open[i].check_count << " answer " << static_cast<int>(open[i].last_answer)
                    << " error '" << open[i].last_error << "' instance " << open[i].instance;
    }
    FAIL() << open.size() << " transactions still open; standby is " << standby.client_id();
  }

  std::set<std::string> committed;
  size_t rolled_back = 0;
  for (const auto& [id, decision] : testing::ReadDecisions(decisions)) {
    if (decision == TxState::kCommit) {
      committed.insert(id);
    } else {
      ++rolled_back;
    }
  }
  auto seen = testing::DrainTopic(broker.endpoint(), "copy", committed.size());
  std::set<std::string> delivered;
  for (const auto& [id, n] : seen) {
    delivered.insert(id);
    EXPECT_EQ(n, 1) << "committed message " << id << " delivered " << n << " times";
  }
  EXPECT_EQ(delivered, committed) << "delivered " << delivered.size() << ", committed "
                                  << committed.size();
  // Name the difference: the sets print cut short.
  const auto decided = testing::ReadDecisions(decisions);
  for (const std::string& id : delivered) {
    if (committed.count(id) != 0) continue;
    auto it = decided.find(id);
    ADD_FAILURE() << "delivered but not committed: " << id
                  << " (decision: " << (it == decided.end() ? "none" : TxStateName(it->second))
                  << ")";
  }
  for (const std::string& id : committed) {
    if (delivered.count(id) == 0) ADD_FAILURE() << "committed but not delivered: " << id;
  }
  std::cout << "committed " << committed.size() << ", rolled back " << rolled_back
            << " (of ~6000 started), delivered " << delivered.size() << "\n";
}

}  // namespace
}  // namespace txmq
