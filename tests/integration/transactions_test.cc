// Transactional messages against an embedded broker with fast check
// timings (first check after 300 ms, then every 200-400 ms, 3 checks before
// a transaction is stuck). Outcomes remembered, message ids, bad
// requests: transactions_ids_test.cc.
#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <set>
#include <thread>
#include <tuple>
#include <zmq.hpp>

#include "protocol/src/util.h"
#include "tests/integration/transactions_fixture.h"
#include "tests/testutil/admin_client.h"
#include "tests/testutil/testutil.h"
#include "txmq/consumer.h"
#include "txmq/producer.h"
#include "txmq/properties.h"
#include "txmq/transaction_producer.h"

namespace txmq {
namespace {

using namespace std::chrono_literals;
using testing::AdminClient;
using testing::Collector;
using testing::Transactions;
using testing::WaitFor;

TEST_F(Transactions, CommitDeliversAndRollbackNeverDoes) {
  std::atomic<TxState> answer{TxState::kUnknown};
  auto p = MakeProducer(answer);
  Collector c(broker_->endpoint(), {"order-created"});
  auto committed = p->SendInTransaction({.topic = "order-created", .body = "yes"},
                                        [](const Message&) { return TxState::kCommit; });
  ASSERT_TRUE(committed.ok()) << committed.status.ToString();
  EXPECT_EQ(committed.outcome, TxState::kCommit);
  auto rolled = p->SendInTransaction({.topic = "order-created", .body = "no"},
                                     [](const Message&) { return TxState::kRollback; });
  ASSERT_TRUE(rolled.ok());
  EXPECT_EQ(rolled.outcome, TxState::kRollback);
  auto threw =
      p->SendInTransaction({.topic = "order-created", .body = "boom"},
                           [](const Message&) -> TxState { throw std::runtime_error("db down"); });
  ASSERT_TRUE(threw.ok());
  EXPECT_EQ(threw.local, TxState::kRollback);
  EXPECT_EQ(threw.outcome, TxState::kRollback);

  ASSERT_TRUE(WaitFor([&] { return c.Has(committed.message_ids[0]); }));
  std::this_thread::sleep_for(500ms);
  EXPECT_EQ(c.count(), 1u);
  EXPECT_FALSE(c.Has(rolled.message_ids[0]));
  EXPECT_FALSE(c.Has(threw.message_ids[0]));
}

TEST_F(Transactions, SeveralMessagesToSeveralTopicsCommitTogether) {
  std::atomic<TxState> answer{TxState::kUnknown};
  auto p = MakeProducer(answer);
  Collector c(broker_->endpoint(), {"orders", "invoices", "audit"});
  std::vector<Message> batch = {{.topic = "orders", .key = "o1", .body = "order"},
                                {.topic = "invoices", .key = "o1", .body = "invoice"},
                                {.topic = "audit", .body = "who"}};
  auto r = p->SendInTransaction(batch, [](const std::vector<Message>& m) {
    EXPECT_EQ(m.size(), 3u);
    return TxState::kCommit;
  });
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r.message_ids.size(), 3u);
  ASSERT_TRUE(WaitFor([&] { return c.count() == 3; }));
  auto rolled =
      p->SendInTransaction(batch, [](const std::vector<Message>&) { return TxState::kRollback; });
  ASSERT_TRUE(rolled.ok());
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(c.count(), 3u);
}

TEST_F(Transactions, UnknownResolvedByCheckBackCommit) {
  // The local transaction is still undecided at the first check (UNKNOWN);
  // by the second it has committed.
  std::atomic<int> checks{0};
  TransactionProducer p(Opts("orders"), [&](const CheckRequest&) {
    return ++checks == 1 ? TxState::kUnknown : TxState::kCommit;
  });
  ASSERT_TRUE(p.Start().ok());
  Collector c(broker_->endpoint(), {"t"});
  auto started = SteadyClock::now();
  auto r = p.SendInTransaction({.topic = "t", .body = "decided later"},
                               [](const Message&) { return TxState::kUnknown; });
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.outcome, TxState::kUnknown);
  ASSERT_TRUE(WaitFor([&] { return c.Has(r.message_ids[0]); }, 5s));
  // Delivered within transaction timeout + one check interval (300 + 200 ms
  // here), plus 1 s for a busy machine.
  EXPECT_LT(SteadyClock::now() - started,
            options_.transaction_timeout + options_.check_interval + 1s);
  EXPECT_EQ(checks, 2);
  auto info = admin_->Show(r.transaction_id);
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->state, wire::TxState::COMMITTED);
  EXPECT_NE(info->resolved_by.find("check answer"), std::string::npos) << info->resolved_by;
}

TEST_F(Transactions, UnknownResolvedByCheckBackRollback) {
  std::atomic<TxState> answer{TxState::kRollback};
  auto p = MakeProducer(answer);
  Collector c(broker_->endpoint(), {"t"});
  auto r = p->SendInTransaction({.topic = "t", .body = "never"},
                                [](const Message&) { return TxState::kUnknown; });
  ASSERT_TRUE(r.ok());
  ASSERT_TRUE(WaitFor([&] {
    auto info = admin_->Show(r.transaction_id);
    return info.ok() && info->state == wire::TxState::ROLLED_BACK;
  }));
  std::this_thread::sleep_for(500ms);
  EXPECT_EQ(c.count(), 0u);
}

TEST_F(Transactions, NoLiveProducerMakesItStuckUntilAnOperatorCommits) {
  std::string tx_id, message_id;
  std::tie(tx_id, message_id) = LeaveUndecided("lonely", "orphan");  // its only producer is gone
  ASSERT_FALSE(tx_id.empty());
  ASSERT_TRUE(WaitFor([&] { return !admin_->ListTransactions(true).empty(); }, 10s));
  auto stuck = admin_->ListTransactions(/*stuck_only=*/true);
  ASSERT_EQ(stuck.size(), 1u);
  EXPECT_EQ(stuck[0].id, tx_id);
  EXPECT_EQ(stuck[0].group, "lonely");
  EXPECT_EQ(stuck[0].check_count, 0u) << "no producer got a check: none counts";
  EXPECT_GE(stuck[0].no_producer_checks, options_.check_max);
  EXPECT_EQ(stuck[0].last_answer, wire::CheckAnswer::NO_PRODUCER);
  EXPECT_NE(stuck[0].last_error.find("no live producer"), std::string::npos);

  Collector c(broker_->endpoint(), {"t"});
  auto forced = admin_->End(tx_id, /*commit=*/true, "alice");
  ASSERT_TRUE(forced.ok()) << forced.status().ToString();
  EXPECT_EQ(*forced, wire::TxState::COMMITTED);
  ASSERT_TRUE(WaitFor([&] { return c.Has(message_id); }));
  auto again = admin_->End(tx_id, true, "alice");
  ASSERT_TRUE(again.ok());  // same outcome again: OK, nothing changes
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(c.count(), 1u);
  auto info = admin_->Show(tx_id);
  EXPECT_EQ(info->resolved_by, "operator alice");
  EXPECT_TRUE(admin_->ListTransactions(true).empty());
}

TEST_F(Transactions, StuckAfterExactlyCheckMaxChecks) {
  broker_->Stop();
  options_.check_interval_max = 10s;  // after the last counted check, silence
  options_.check_interval = 150ms;
  options_.check_max = 4;
  options_.check_timeout = 2s;  // a slow checker thread must still count as UNKNOWN
  broker_ = testing::StartBroker(options_);
  admin_ = std::make_unique<AdminClient>(broker_->endpoint());
  std::atomic<TxState> answer{TxState::kUnknown};
  std::atomic<int> checks{0};
  auto p = MakeProducer(answer, &checks);
  auto r = p->SendInTransaction({.topic = "t", .body = "undecided"},
                                [](const Message&) { return TxState::kUnknown; });
  ASSERT_TRUE(r.ok());
  testing::TxInfo info;
  ASSERT_TRUE(WaitFor(
      [&] {
        auto shown = admin_->Show(r.transaction_id);
        if (shown.ok()) info = *shown;
        return shown.ok() && info.stuck;
      },
      10s));
  EXPECT_EQ(info.check_count, 4u);
  EXPECT_EQ(info.last_answer, wire::CheckAnswer::UNKNOWN);
  // A stuck transaction is checked again only at the capped interval (10 s).
  std::this_thread::sleep_for(500ms);
  EXPECT_EQ(checks, 4);
  EXPECT_EQ(admin_->Show(r.transaction_id)->check_count, 4u);
  // A stuck transaction is kept, never dropped; checking it again is allowed.
  answer = TxState::kCommit;
  ASSERT_TRUE(admin_->CheckNow(r.transaction_id).ok());
  ASSERT_TRUE(WaitFor([&] {
    auto i = admin_->Show(r.transaction_id);
    return i.ok() && i->state == wire::TxState::COMMITTED;
  }));
}

TEST_F(Transactions, HalfMessagesAreNeverVisibleAlsoAcrossRestart) {
  std::atomic<TxState> answer{TxState::kUnknown};
  std::string tx_id;
  {
    auto p = MakeProducer(answer);
    auto r = p->SendInTransaction({.topic = "hidden", .body = "half"},
                                  [](const Message&) { return TxState::kUnknown; });
    ASSERT_TRUE(r.ok());
    tx_id = r.transaction_id;
    Collector c(broker_->endpoint(), {"hidden"});
    std::this_thread::sleep_for(800ms);
    EXPECT_EQ(c.count(), 0u);
  }
  broker_->Stop();
  broker_ = testing::StartBroker(options_);
  admin_ = std::make_unique<AdminClient>(broker_->endpoint());
  Collector c(broker_->endpoint(), {"hidden"});
  std::this_thread::sleep_for(800ms);
  EXPECT_EQ(c.count(), 0u);
  auto info = admin_->Show(tx_id);
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->state, wire::TxState::PREPARED);
}

TEST_F(Transactions, RepeatedConflictingAndUnknownEnds) {
  std::atomic<TxState> answer{TxState::kUnknown};
  auto p = MakeProducer(answer);
  Collector c(broker_->endpoint(), {"t"});
  auto r = p->SendInTransaction({.topic = "t", .body = "once"},
                                [](const Message&) { return TxState::kCommit; });
  ASSERT_TRUE(r.ok());
  for (int i = 0; i < 3; ++i) {  // duplicate commits: OK, one delivery
    auto again = admin_->End(r.transaction_id, true);
    ASSERT_TRUE(again.ok());
    EXPECT_EQ(*again, wire::TxState::COMMITTED);
  }
  auto conflict = admin_->End(r.transaction_id, false);
  ASSERT_FALSE(conflict.ok());
  EXPECT_EQ(conflict.status().code(), StatusCode::kConflict);
  EXPECT_NE(conflict.status().message().find("COMMITTED"), std::string::npos)
      << conflict.status().message();
  auto unknown = admin_->End("no-such-transaction", true);
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.status().code(), StatusCode::kNotFound);
  ASSERT_TRUE(WaitFor([&] { return c.count() >= 1; }));
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(c.count(), 1u);
}

TEST_F(Transactions, CommitAfterACheckRollbackIsRefused) {
  std::atomic<TxState> answer{TxState::kRollback};
  auto p = MakeProducer(answer);
  Collector c(broker_->endpoint(), {"t"});
  bool rolled_back_first = false;
  auto r = p->SendInTransaction({.topic = "t", .body = "late"}, [&](const Message& m) {
    // Slower than the first check (due after 300 ms): commit only once the
    // check's rollback has landed.
    const std::string tx_id = m.properties.at(property::kTransactionId);
    rolled_back_first = WaitFor([&] {
      auto info = admin_->Show(tx_id);
      return info.ok() && info->state == wire::TxState::ROLLED_BACK;
    });
    return TxState::kCommit;
  });
  EXPECT_TRUE(rolled_back_first) << "the check never rolled the transaction back";
  // Not ok(): a caller who checks only that must not believe it committed.
  EXPECT_EQ(r.status.code(), StatusCode::kAborted) << r.status.ToString();
  EXPECT_NE(r.status.message().find(r.transaction_id), std::string::npos) << r.status.message();
  EXPECT_NE(r.status.message().find("rolled the transaction back"), std::string::npos);
  EXPECT_EQ(r.local, TxState::kCommit);
  EXPECT_EQ(r.outcome, TxState::kRollback) << "the check's rollback won; the late commit lost";
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(c.count(), 0u);
}

TEST_F(Transactions, LocalRollbackAfterAnOperatorCommitIsAConflict) {
  std::atomic<TxState> answer{TxState::kUnknown};
  auto p = MakeProducer(answer);
  auto r = p->SendInTransaction({.topic = "t", .body = "x"}, [&](const Message& m) {
    EXPECT_TRUE(
        admin_->End(m.properties.at(property::kTransactionId), /*commit=*/true, "ops").ok());
    return TxState::kRollback;
  });
  EXPECT_EQ(r.status.code(), StatusCode::kConflict) << r.status.ToString();
  EXPECT_NE(r.status.message().find(r.transaction_id), std::string::npos) << r.status.message();
  EXPECT_EQ(r.local, TxState::kRollback);
  EXPECT_EQ(r.outcome, TxState::kCommit);
}

TEST_F(Transactions, AHalfWhoseReplyTimedOutStillNamesItsTransaction) {
  // A peer that takes requests and never answers, like a hung broker.
  zmq::context_t context(1);
  zmq::socket_t silent(context, zmq::socket_type::router);
  silent.set(zmq::sockopt::linger, 0);
  silent.bind("tcp://127.0.0.1:*");
  const std::string endpoint = silent.get(zmq::sockopt::last_endpoint);
  TransactionProducer p(
      {.broker = endpoint, .group = "orders", .send_timeout = 300ms, .retries = 1},
      [](const CheckRequest&) { return TxState::kUnknown; });
  ASSERT_TRUE(p.Start().ok());
  bool ran = false;
  auto r = p.SendInTransaction({.topic = "t", .body = "x"}, [&](const Message&) {
    ran = true;
    return TxState::kCommit;
  });
  EXPECT_FALSE(ran) << "the local transaction must not run without a stored half";
  EXPECT_EQ(r.status.code(), StatusCode::kTimeout) << r.status.ToString();
  EXPECT_FALSE(r.transaction_id.empty()) << "the half may be stored: its id must be known";
  EXPECT_NE(r.status.message().find(r.transaction_id), std::string::npos) << r.status.message();
  EXPECT_FALSE(r.local.has_value());
  EXPECT_EQ(r.outcome, TxState::kUnknown);
  ASSERT_EQ(r.message_ids.size(), 1u);
}

TEST_F(Transactions, AnOversizedTransactionIsTooLargeAtOnceAndOthersOnTheProducerGoOn) {
  // Two 3 MiB messages: each fits the 4 MiB limit, together they do not.
  // Refused before anything is sent, so the connection (and the other
  // calls on it) never notice.
  std::atomic<TxState> answer{TxState::kUnknown};
  auto p = MakeProducer(answer);
  std::atomic<bool> oversized_done{false};
  std::atomic<int> plain_sent{0};
  TransactionResult other;
  std::thread other_tx([&] {
    other = p->SendInTransaction({.topic = "t", .body = "small"}, [&](const Message&) {
      EXPECT_TRUE(WaitFor([&] { return oversized_done.load(); }));
      return TxState::kCommit;
    });
  });
  std::thread plain([&] {
    while (!oversized_done) {
      auto r = p->Send({.topic = "plain", .body = "x"});
      EXPECT_TRUE(r.ok()) << r.status().ToString();
      ++plain_sent;
    }
  });
  ASSERT_TRUE(WaitFor([&] { return plain_sent.load() > 5; }));
  const auto started = SteadyClock::now();
  bool ran = false;
  auto big =
      p->SendInTransaction(std::vector<Message>{{.topic = "t", .body = std::string(3 << 20, 'a')},
                                                {.topic = "t", .body = std::string(3 << 20, 'b')}},
                           [&](const std::vector<Message>&) {
                             ran = true;
                             return TxState::kCommit;
                           });
  const auto took = SteadyClock::now() - started;
  oversized_done = true;
  other_tx.join();
  plain.join();
  EXPECT_EQ(big.status.code(), StatusCode::kTooLarge) << big.status.ToString();
  EXPECT_NE(big.status.message().find(std::to_string(6 << 20)), std::string::npos)
      << big.status.message();
  EXPECT_TRUE(big.transaction_id.empty()) << "nothing was sent";
  EXPECT_FALSE(ran);
  EXPECT_LT(took, 1s) << "refused without a round trip";
  EXPECT_TRUE(other.ok()) << other.status.ToString();
  EXPECT_EQ(other.outcome, TxState::kCommit);
}

TEST_F(Transactions, AMessageThatFitsSendFitsATransaction) {
  // The library's own properties (transaction id, producer group) do not
  // count against the limit.
  std::atomic<TxState> answer{TxState::kUnknown};
  auto p = MakeProducer(answer);
  Message m{.topic = "t", .body = std::string(options_.max_message_bytes, 'x')};
  auto sent = p->Send(m);
  ASSERT_TRUE(sent.ok()) << sent.status().ToString();
  m.id.clear();
  auto r = p->SendInTransaction(m, [](const Message&) { return TxState::kCommit; });
  EXPECT_TRUE(r.ok()) << r.status.ToString();
  auto forged = p->SendInTransaction(
      {.topic = "t", .body = "x", .properties = {{property::kProducerGroup, "someone-else"}}},
      [](const Message&) { return TxState::kCommit; });
  EXPECT_EQ(forged.status.code(), StatusCode::kInvalidArgument) << forged.status.ToString();
}

TEST_F(Transactions, CheckerThatThrowsOrHangsCountsAsUnknown) {
  std::atomic<int> calls{0};
  TransactionProducer p(Opts("flaky"), [&](const CheckRequest&) -> TxState {
    if (calls++ % 2 == 0) throw std::runtime_error("checker database unreachable");
    std::this_thread::sleep_for(2s);  // hangs past the broker's check timeout
    return TxState::kCommit;
  });
  ASSERT_TRUE(p.Start().ok());
  auto r = p.SendInTransaction({.topic = "t", .body = "x"},
                               [](const Message&) { return TxState::kUnknown; });
  ASSERT_TRUE(r.ok());
  // Keep the view that showed ERROR: the next (hanging) check overwrites it.
  testing::TxInfo info;
  ASSERT_TRUE(WaitFor([&] {
    auto shown = admin_->Show(r.transaction_id);
    if (shown.ok()) info = *shown;
    return shown.ok() && info.last_answer == wire::CheckAnswer::ERROR;
  }));
  EXPECT_NE(info.last_error.find("checker database unreachable"), std::string::npos);
  EXPECT_EQ(info.state, wire::TxState::PREPARED) << "an error is never a commit";
  // Meanwhile ordinary traffic flows.
  Producer plain(Opts("plain"));
  ASSERT_TRUE(plain.Start().ok());
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(plain.Send({.topic = "other", .body = "x"}).ok());
  ASSERT_TRUE(WaitFor(
      [&] {
        auto i = admin_->Show(r.transaction_id);
        return i.ok() && i->last_answer == wire::CheckAnswer::NO_ANSWER;
      },
      10s));
  p.Shutdown();
}

TEST_F(Transactions, ChecksGoToTheOriginatingInstanceWhileItIsAlive) {
  std::atomic<int> checks_a{0}, checks_b{0};
  TransactionProducer a(Opts("pair"), [&](const CheckRequest&) {
    ++checks_a;
    return TxState::kUnknown;
  });
  TransactionProducer b(Opts("pair"), [&](const CheckRequest&) {
    ++checks_b;
    return TxState::kCommit;  // would commit if it were asked
  });
  ASSERT_TRUE(a.Start().ok());
  ASSERT_TRUE(b.Start().ok());
  auto r = a.SendInTransaction({.topic = "t", .body = "x"},
                               [](const Message&) { return TxState::kUnknown; });
  ASSERT_TRUE(r.ok());
  ASSERT_TRUE(WaitFor([&] { return checks_a >= 2; }));
  EXPECT_EQ(checks_b, 0);
  EXPECT_EQ(admin_->Show(r.transaction_id)->state, wire::TxState::PREPARED);
  a.Shutdown();  // gone: now the other member of the group answers
  ASSERT_TRUE(
      WaitFor([&] { return admin_->Show(r.transaction_id)->state == wire::TxState::COMMITTED; }));
  EXPECT_GE(checks_b, 1);
}

TEST_F(Transactions, DelayedTransactionalMessageIsDueAfterTheCommit) {
  std::atomic<TxState> answer{TxState::kUnknown};
  auto p = MakeProducer(answer);
  Collector c(broker_->endpoint(), {"t"});
  SteadyTime committed_at;
  auto r =
      p->SendInTransaction({.topic = "t", .body = "later", .delay = 700ms}, [&](const Message&) {
        std::this_thread::sleep_for(200ms);
        committed_at = SteadyClock::now();
        return TxState::kCommit;
      });
  ASSERT_TRUE(r.ok());
  ASSERT_TRUE(WaitFor([&] { return c.count() == 1; }));
  EXPECT_GE(SteadyClock::now() - committed_at, 600ms);
}

TEST_F(Transactions, ProducerAndBrokerRestartInTheMiddle) {
  std::string tx_id, message_id;
  std::tie(tx_id, message_id) = LeaveUndecided("restarting", "mid");
  ASSERT_FALSE(tx_id.empty());
  broker_->Stop();
  broker_ = testing::StartBroker(options_);
  admin_ = std::make_unique<AdminClient>(broker_->endpoint());
  EXPECT_EQ(admin_->Show(tx_id)->state, wire::TxState::PREPARED);
  std::atomic<TxState> answer{TxState::kCommit};
  auto p = MakeProducer(answer, nullptr, "restarting");  // the producer is back
  Collector c(broker_->endpoint(), {"t"});
  ASSERT_TRUE(WaitFor([&] { return c.Has(message_id); }, 10s));
}

TEST_F(Transactions, StuckPolicyCommitOrRollbackDecidesInsteadOfParking) {
  for (StuckPolicy policy : {StuckPolicy::kRollback, StuckPolicy::kCommit}) {
    const bool commit = policy == StuckPolicy::kCommit;
    SCOPED_TRACE(commit ? "--stuck-policy commit" : "--stuck-policy rollback");
    broker_->Stop();
    options_.stuck_policy = policy;
    options_.data_dir = dir_.Sub(commit ? "commit-policy" : "rollback-policy");
    broker_ = testing::StartBroker(options_);
    admin_ = std::make_unique<AdminClient>(broker_->endpoint());
    Collector c(broker_->endpoint(), {"t"});
    // Nobody left to answer: after the start-up grace, check-max attempts
    // that find no producer, then the policy decides.
    std::string tx_id, message_id;
    std::tie(tx_id, message_id) = LeaveUndecided("lonely", "orphan");
    ASSERT_FALSE(tx_id.empty());
    const auto wanted = commit ? wire::TxState::COMMITTED : wire::TxState::ROLLED_BACK;
    testing::TxInfo info;
    ASSERT_TRUE(WaitFor([&] {
      auto shown = admin_->Show(tx_id);
      if (shown.ok()) info = *shown;
      return shown.ok() && info.state == wanted;
    }));
    EXPECT_EQ(info.check_count, 0u);
    EXPECT_EQ(info.no_producer_checks, options_.check_max);
    EXPECT_NE(info.resolved_by.find("stuck policy"), std::string::npos) << info.resolved_by;
    EXPECT_TRUE(admin_->ListTransactions().empty()) << "decided, not parked";
    if (commit) {
      EXPECT_TRUE(WaitFor([&] { return c.Has(message_id); }));
    } else {
      std::this_thread::sleep_for(300ms);
      EXPECT_EQ(c.count(), 0u);
    }
  }
}

TEST_F(Transactions, ChecksPerSecondCapsCheckTraffic) {
  broker_->Stop();
  options_.checks_per_second = 20;
  options_.check_max = 1000;
  broker_ = testing::StartBroker(options_);
  admin_ = std::make_unique<AdminClient>(broker_->endpoint());
  std::mutex mu;
  std::vector<SteadyTime> checks;
  TransactionProducer p(Opts("busy"), [&](const CheckRequest&) {
    std::lock_guard<std::mutex> lock(mu);
    checks.push_back(SteadyClock::now());
    return TxState::kUnknown;
  });
  ASSERT_TRUE(p.Start().ok());
  for (int i = 0; i < 100; ++i) {
    ASSERT_TRUE(p.SendInTransaction({.topic = "t", .body = std::to_string(i)}, [](const Message&) {
                   return TxState::kUnknown;
                 }).ok());
  }
  // Uncapped, 100 transactions due every 200-400 ms would draw hundreds of
  // checks a second.
  ASSERT_TRUE(WaitFor([&] {
    std::lock_guard<std::mutex> lock(mu);
    return !checks.empty();
  }));
  std::this_thread::sleep_for(2s);
  std::lock_guard<std::mutex> lock(mu);
  const auto window_end = checks.front() + 2s;
  const auto in_window =
      std::count_if(checks.begin(), checks.end(), [&](SteadyTime t) { return t < window_end; });
  // 20 a second for 2 s, plus a full bucket (20) at the start.
  EXPECT_LE(in_window, 60) << "checks in the first 2 s";
  EXPECT_GE(in_window, 20) << "checks do flow";
}

}  // namespace
}  // namespace txmq
