// The transaction state machine on a fake clock: the first check at the
// transaction timeout, the interval growing by half up to its cap, an
// unanswered check timing out, stuck after check_max and the stuck policy,
// the no-producer grace after a start, commit and rollback by the producer
// or by a check answer, and forgetting a resolved transaction. Each is
// asserted at the exact millisecond. No socket, no sleep.
#include <gtest/gtest.h>

#include "tests/unit/broker_harness.h"

namespace txmq::broker {
namespace {

using namespace std::chrono_literals;
using storage::CheckAnswerCode;
using storage::TxStateCode;

BrokerOptions TxOptions() {
  BrokerOptions o;
  o.default_queues = 1;
  o.max_message_bytes = 1u << 20;
  o.segment_bytes = 8u << 20;
  o.transaction_timeout = 6s;
  o.check_interval = 10s;
  o.check_interval_max = 30s;
  o.check_max = 100;
  o.check_timeout = 3s;
  // Producers here never heartbeat: only the no-producer test lets them
  // go silent.
  o.client_timeout = 1h;
  o.resolved_retention = 1h;
  o.cleanup_interval = 1s;
  return o;
}

constexpr char kGroup[] = "shop";
constexpr char kTopic[] = "orders";

class TransactionClock : public ::testing::Test {
 protected:
  explicit TransactionClock(BrokerOptions options = TxOptions()) : h_(options), t0_(h_.NowMs()) {}

  // The loop wakes at `ms` after the start (broker time).
  void At(int64_t ms) {
    const int64_t now = h_.NowMs() - t0_;
    ASSERT_GE(ms, now) << "time only moves forward";
    h_.Advance(std::chrono::milliseconds(ms - now));
  }

  storage::TxRecord Tx(const std::string& id = "tx-1") {
    auto r = h_.GetTx(id);
    EXPECT_TRUE(r.has_value()) << "no record of " << id;
    return r.value_or(storage::TxRecord{});
  }

  std::vector<std::string> Consume() {
    auto got = h_.Pull("c1", "workers", kTopic, 60'000);
    std::vector<std::string> ids;
    if (got) {
      for (const Pulled& p : *got) ids.push_back(p.id);
    }
    return ids;
  }

  // A check of tx-1 arrives at p1 at exactly `ms` (not 1 ms before) with
  // this check count; returns it.
  Check ExpectCheckAt(int64_t ms, uint32_t count) {
    At(ms - 1);
    EXPECT_TRUE(h_.TakeChecks("p1").empty()) << "a check 1 ms before " << ms;
    At(ms);
    auto checks = h_.TakeChecks("p1");
    EXPECT_EQ(checks.size(), 1u) << "no check at " << ms;
    if (checks.size() != 1) return {};
    EXPECT_EQ(checks[0].tx_id, "tx-1");
    EXPECT_EQ(checks[0].check_count, count);
    return checks[0];
  }

  BrokerHarness h_;
  const int64_t t0_;
};

TEST_F(TransactionClock, TheFirstCheckComesAtTheTransactionTimeout) {
  h_.Hello("p1", wire::Role::PRODUCER, kGroup);
  ASSERT_EQ(h_.SendHalf("p1", kGroup, "tx-1", {"m1"}), wire::TxState::PREPARED);
  storage::TxRecord r = Tx();
  EXPECT_EQ(r.state, TxStateCode::kPrepared);
  EXPECT_EQ(r.born_ms, t0_);
  EXPECT_EQ(r.next_check_ms, t0_ + 6000);
  EXPECT_TRUE(Consume().empty()) << "a half is invisible";

  ExpectCheckAt(6000, 1);
  r = Tx();
  EXPECT_EQ(r.check_count, 1u);
  EXPECT_EQ(r.last_check_ms, t0_ + 6000);
  EXPECT_EQ(r.next_check_ms, t0_ + 16000);
  EXPECT_EQ(h_.transactions().NextWake(), h_.SteadyNow() + 3s) << "the answer is due in 3 s";
}

TEST_F(TransactionClock, TheCheckIntervalGrowsByHalfUpToItsCap) {
  h_.Hello("p1", wire::Role::PRODUCER, kGroup);
  h_.SendHalf("p1", kGroup, "tx-1", {"m1"});
  // 6 s timeout, then 10 s, 15 s, 22.5 s, and 33.75 s capped at 30 s.
  const std::vector<int64_t> at{6000, 16000, 31000, 53500, 83500, 113500};
  for (size_t i = 0; i < at.size(); ++i) {
    SCOPED_TRACE("check " + std::to_string(i + 1));
    Check c = ExpectCheckAt(at[i], static_cast<uint32_t>(i + 1));
    h_.Answer("p1", c, wire::TxOutcome::UNKNOWN);
    storage::TxRecord r = Tx();
    EXPECT_EQ(r.last_answer, CheckAnswerCode::kUnknown);
    if (i + 1 < at.size()) {
      EXPECT_EQ(r.next_check_ms, t0_ + at[i + 1]);
    }
  }
  EXPECT_FALSE(Tx().stuck);
}

TEST_F(TransactionClock, AnUnansweredCheckTimesOutAfterTheCheckTimeout) {
  h_.Hello("p1", wire::Role::PRODUCER, kGroup);
  h_.SendHalf("p1", kGroup, "tx-1", {"m1"});
  ExpectCheckAt(6000, 1);
  At(8999);
  EXPECT_EQ(Tx().last_answer, CheckAnswerCode::kNone) << "still waiting for the answer";
  At(9000);
  storage::TxRecord r = Tx();
  EXPECT_EQ(r.last_answer, CheckAnswerCode::kNoAnswer);
  EXPECT_NE(r.last_error.find("no reply from producer p1 within 3s"), std::string::npos)
      << r.last_error;
  EXPECT_EQ(r.check_count, 1u);
  EXPECT_EQ(r.next_check_ms, t0_ + 16000) << "the timeout does not move the next check";
  ExpectCheckAt(16000, 2);
}

TEST_F(TransactionClock, ACommitAnswerDeliversTheMessagesFromThatInstant) {
  h_.Hello("p1", wire::Role::PRODUCER, kGroup);
  h_.SendHalf("p1", kGroup, "tx-1", {"m1", "m2"});
  Check c = ExpectCheckAt(6000, 1);
  At(6500);
  h_.Answer("p1", c, wire::TxOutcome::COMMIT);
  storage::TxRecord r = Tx();
  EXPECT_EQ(r.state, TxStateCode::kCommitted);
  EXPECT_EQ(r.resolved_ms, t0_ + 6500);
  EXPECT_EQ(r.resolved_by, "check answer from p1");
  auto got = h_.Pull("c1", "workers", kTopic, 60'000);
  ASSERT_TRUE(got.has_value());
  ASSERT_EQ(got->size(), 2u);
  EXPECT_EQ((*got)[0].id, "m1");
  EXPECT_EQ((*got)[0].stored_ms, t0_ + 6500) << "stored when committed";

  At(3'600'000 - 1);
  EXPECT_TRUE(h_.TakeChecks("p1").empty()) << "a decided transaction is never checked";
  auto [late, state] = h_.End("p1", "tx-1", wire::TxOutcome::ROLLBACK);
  EXPECT_EQ(late.code(), StatusCode::kConflict) << late.ToString();
  auto [again, again_state] = h_.End("p1", "tx-1", wire::TxOutcome::COMMIT);
  EXPECT_TRUE(again.ok()) << again.ToString();
  EXPECT_EQ(again_state, wire::TxState::COMMITTED);
}

TEST_F(TransactionClock, ARollbackBeforeTheTimeoutMeansNoCheckAndNoMessage) {
  h_.Hello("p1", wire::Role::PRODUCER, kGroup);
  h_.SendHalf("p1", kGroup, "tx-1", {"m1"});
  At(3000);
  auto [s, state] = h_.End("p1", "tx-1", wire::TxOutcome::ROLLBACK);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(state, wire::TxState::ROLLED_BACK);
  storage::TxRecord r = Tx();
  EXPECT_EQ(r.state, TxStateCode::kRolledBack);
  EXPECT_EQ(r.resolved_ms, t0_ + 3000);
  EXPECT_EQ(r.resolved_by, "producer p1");
  At(600'000);
  EXPECT_TRUE(h_.TakeChecks("p1").empty());
  EXPECT_TRUE(Consume().empty());
}

TEST_F(TransactionClock, ACommittedDelayedMessageIsDueItsDelayAfterTheCommit) {
  h_.Hello("p1", wire::Role::PRODUCER, kGroup);
  h_.SendHalf("p1", kGroup, "tx-1", {"m1"}, kTopic, /*delay_ms=*/5000);
  At(1000);
  ASSERT_TRUE(h_.End("p1", "tx-1", wire::TxOutcome::COMMIT).first.ok());
  At(5999);
  EXPECT_TRUE(Consume().empty()) << "due 5 s after the commit, not after the half";
  At(6000);
  EXPECT_EQ(Consume(), std::vector<std::string>{"m1"});
}

TEST_F(TransactionClock, AResolvedTransactionIsForgottenAfterResolvedRetention) {
  h_.Hello("p1", wire::Role::PRODUCER, kGroup);
  h_.SendHalf("p1", kGroup, "tx-1", {"m1"});
  ASSERT_TRUE(h_.End("p1", "tx-1", wire::TxOutcome::COMMIT).first.ok());
  At(3'600'000 - 1);
  EXPECT_TRUE(h_.GetTx("tx-1").has_value()) << "kept for 1 h";
  EXPECT_TRUE(h_.End("p1", "tx-1", wire::TxOutcome::COMMIT).first.ok());
  // Cleanup runs every cleanup_interval (1 s): gone by the next pass.
  At(3'600'000 - 1 + 1000);
  EXPECT_FALSE(h_.GetTx("tx-1").has_value());
  EXPECT_EQ(h_.End("p1", "tx-1", wire::TxOutcome::COMMIT).first.code(), StatusCode::kNotFound);
}

TEST_F(TransactionClock, AProducerThatIsGoneIsSkippedForAnotherOfItsGroup) {
  h_.Hello("p1", wire::Role::PRODUCER, kGroup);
  h_.Hello("p2", wire::Role::PRODUCER, kGroup);
  h_.SendHalf("p1", kGroup, "tx-1", {"m1"});
  h_.link().Disconnect("p1");
  At(6000);
  auto checks = h_.TakeChecks("p2");
  ASSERT_EQ(checks.size(), 1u);
  h_.Answer("p2", checks[0], wire::TxOutcome::ROLLBACK);
  EXPECT_EQ(Tx().state, TxStateCode::kRolledBack);
  EXPECT_EQ(Tx().resolved_by, "check answer from p2");
}

// With CURVE the registry's check filter asks the ACL whether a producer
// may still act for the group when a checker is picked: between an ACL
// reload and the core applying it, a registration the new list refuses is
// still there, and the filter alone keeps the group's halves from it.
TEST_F(TransactionClock, ChecksGoOnlyToProducersTheCheckFilterAllows) {
  h_.Hello("p1", wire::Role::PRODUCER, kGroup);
  h_.Hello("revoked", wire::Role::PRODUCER, kGroup);
  h_.clients().set_check_filter([](const ClientInfo& c, const std::string& group) {
    return c.id != "revoked" && group == kGroup;
  });
  // The instance that sent the half would be asked first.
  h_.SendHalf("revoked", kGroup, "tx-1", {"m1"});
  At(6000);
  EXPECT_TRUE(h_.TakeChecks("revoked").empty()) << "a producer the filter refuses was checked";
  auto checks = h_.TakeChecks("p1");
  ASSERT_EQ(checks.size(), 1u);

  // Nobody the filter allows: nobody is asked.
  h_.clients().set_check_filter([](const ClientInfo&, const std::string&) { return false; });
  h_.SendHalf("revoked", kGroup, "tx-2", {"m2"});
  At(6000 + 6000 + 1);
  EXPECT_TRUE(h_.TakeChecks("revoked").empty());
  for (const Check& c : h_.TakeChecks("p1")) EXPECT_NE(c.tx_id, "tx-2");
  EXPECT_EQ(Tx("tx-2").check_count, 0u);
}

class TransactionClockStuck : public TransactionClock {
 protected:
  static BrokerOptions Options(StuckPolicy policy) {
    BrokerOptions o = TxOptions();
    o.check_max = 3;
    o.stuck_policy = policy;
    return o;
  }
  TransactionClockStuck() : TransactionClock(Options(StuckPolicy::kPark)) {}
  explicit TransactionClockStuck(StuckPolicy policy) : TransactionClock(Options(policy)) {}
};

TEST_F(TransactionClockStuck, AfterCheckMaxItIsStuckAndCheckedAtTheCap) {
  h_.Hello("p1", wire::Role::PRODUCER, kGroup);
  h_.SendHalf("p1", kGroup, "tx-1", {"m1"});
  h_.Answer("p1", ExpectCheckAt(6000, 1), wire::TxOutcome::UNKNOWN);
  h_.Answer("p1", ExpectCheckAt(16000, 2), wire::TxOutcome::UNKNOWN);
  EXPECT_FALSE(Tx().stuck);
  // The third check is the last that counts: from it on the interval is
  // the cap (30 s), not 22.5 s.
  Check third = ExpectCheckAt(31000, 3);
  EXPECT_EQ(Tx().next_check_ms, t0_ + 61000);
  h_.Answer("p1", third, wire::TxOutcome::UNKNOWN);
  storage::TxRecord r = Tx();
  EXPECT_TRUE(r.stuck);
  EXPECT_EQ(r.state, TxStateCode::kPrepared) << "parked for an operator";
  ExpectCheckAt(61000, 4);
  ExpectCheckAt(91000, 5);
  // A late decision still ends it.
  ASSERT_TRUE(h_.End("p1", "tx-1", wire::TxOutcome::COMMIT).first.ok());
  EXPECT_FALSE(Tx().stuck);
  EXPECT_EQ(Consume(), std::vector<std::string>{"m1"});
}

class TransactionClockStuckRollback : public TransactionClockStuck {
 protected:
  TransactionClockStuckRollback() : TransactionClockStuck(StuckPolicy::kRollback) {}
};

TEST_F(TransactionClockStuckRollback, TheStuckPolicyEndsItAtTheLastCheck) {
  h_.Hello("p1", wire::Role::PRODUCER, kGroup);
  h_.SendHalf("p1", kGroup, "tx-1", {"m1"});
  h_.Answer("p1", ExpectCheckAt(6000, 1), wire::TxOutcome::UNKNOWN);
  h_.Answer("p1", ExpectCheckAt(16000, 2), wire::TxOutcome::UNKNOWN);
  ExpectCheckAt(31000, 3);
  // Unanswered: at the check timeout the third attempt is used up.
  At(33999);
  EXPECT_EQ(Tx().state, TxStateCode::kPrepared);
  At(34000);
  storage::TxRecord r = Tx();
  EXPECT_EQ(r.state, TxStateCode::kRolledBack);
  EXPECT_EQ(r.resolved_ms, t0_ + 34000);
  EXPECT_EQ(r.resolved_by, "stuck policy rollback");
  EXPECT_EQ(r.last_answer, CheckAnswerCode::kNoAnswer);
  At(600'000);
  EXPECT_TRUE(h_.TakeChecks("p1").empty());
  EXPECT_TRUE(Consume().empty());
}

class TransactionClockNoProducer : public TransactionClock {
 protected:
  static BrokerOptions Options() {
    BrokerOptions o = TxOptions();
    o.client_timeout = 10s;  // the grace after a start: 10 s + 3 s
    o.check_max = 2;
    return o;
  }
  TransactionClockNoProducer() : TransactionClock(Options()) {}
};

TEST_F(TransactionClockNoProducer, ChecksWaitOutTheStartGraceThenCountAsNoProducer) {
  // The producer that sent it never said hello to this broker (as after a
  // broker restart): nobody answers checks for its group.
  h_.SendHalf("p1", kGroup, "tx-1", {"m1"});
  At(6000);
  EXPECT_EQ(Tx().no_producer_checks, 0u) << "due, but in the grace: not an attempt";
  At(12999);
  EXPECT_EQ(Tx().no_producer_checks, 0u);
  EXPECT_EQ(Tx().last_check_ms, 0);
  At(13000);  // client_timeout + kReconnectAllowance after the start
  storage::TxRecord r = Tx();
  EXPECT_EQ(r.no_producer_checks, 1u);
  EXPECT_EQ(r.check_count, 0u) << "nobody received it";
  EXPECT_EQ(r.last_answer, CheckAnswerCode::kNoProducer);
  EXPECT_EQ(r.last_check_ms, t0_ + 13000);
  EXPECT_EQ(r.next_check_ms, t0_ + 23000);
  EXPECT_FALSE(r.stuck);
  At(22999);
  EXPECT_EQ(Tx().no_producer_checks, 1u);
  At(23000);
  r = Tx();
  EXPECT_EQ(r.no_producer_checks, 2u);
  EXPECT_TRUE(r.stuck) << "check_max attempts in a row with no producer";
  EXPECT_EQ(r.next_check_ms, t0_ + 53000) << "capped from the last attempt on";
}

}  // namespace
}  // namespace txmq::broker
