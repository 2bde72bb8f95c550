// Ending a transaction at its edges, on the broker's core with a clock the
// test drives: an end that arrives before its halves are durable, and a
// commit that cannot read a half.
#include <gtest/gtest.h>

#include "broker/src/server.h"
#include "tests/testutil/fault_fs.h"
#include "tests/testutil/log_capture.h"
#include "tests/unit/broker_harness.h"

namespace txmq::broker {
namespace {

using namespace std::chrono_literals;

void BuildHalf(wire::Envelope::Builder e, const std::string& tx_id, const std::string& id,
               const std::string& group = "g") {
  auto h = e.initSendHalf();
  h.setTransactionId(tx_id);
  h.setProducerGroup(group);
  auto m = h.initMessages(1)[0];
  m.setId(id);
  m.setTopic("orders");
  m.setBody(wire::AsData("body of " + id));
}

void BuildEnd(wire::Envelope::Builder e, const std::string& tx_id) {
  auto end = e.initEndTransaction();
  end.setTransactionId(tx_id);
  end.setOutcome(wire::TxOutcome::COMMIT);
}

// A client that sends the commit without waiting for its SendHalf's answer
// (pipelined): the halves are in the round being written, not yet in the
// index, and a commit then would find no half and lose the message. The
// end is refused as UNAVAILABLE instead; once the half is answered, the
// same end commits it.
TEST(TxEndEdges, AnEndBeforeItsHalvesAreDurableIsRefusedAndLosesNothing) {
  BrokerOptions o;
  o.default_queues = 1;
  BrokerHarness h(o);
  h.Hello("p", wire::Role::PRODUCER, "g");
  testing::LogCapture log;
  const uint64_t half = h.Submit("p", [](auto e) { BuildHalf(e, "tx-early", "m-early"); });
  const uint64_t end = h.Submit("p", [](auto e) { BuildEnd(e, "tx-early"); });
  h.Commit();
  auto half_reply = h.link().TakeReply("p", half);
  ASSERT_TRUE(half_reply && half_reply->envelope().isSendHalfOk());
  auto end_reply = h.link().TakeReply("p", end);
  ASSERT_TRUE(end_reply.has_value());
  EXPECT_EQ(wire::StatusOf(end_reply->envelope()).code(), StatusCode::kUnavailable)
      << wire::StatusOf(end_reply->envelope()).ToString();
  EXPECT_NE(wire::StatusOf(end_reply->envelope()).message().find("is not prepared yet"),
            std::string::npos);
  EXPECT_EQ(log.text().find("missing or unreadable"), std::string::npos) << log.text();

  auto [status, state] = h.End("p", "tx-early", wire::TxOutcome::COMMIT);
  ASSERT_TRUE(status.ok()) << status.ToString();
  EXPECT_EQ(state, wire::TxState::COMMITTED);
  auto got = h.Pull("c", "readers", "orders", 60'000, 0, 10);
  ASSERT_TRUE(got.has_value());
  ASSERT_EQ(got->size(), 1u);
  EXPECT_EQ((*got)[0].id, "m-early");
}

// A check due between a half's SendHalf and the end of its round (a slow
// round, or an operator's "check now"): no check goes out until the halves
// are written (a producer that
// answered COMMIT would otherwise have the broker commit a half it cannot
// find yet), and one goes out right after; its COMMIT then stores the
// message. An answer nobody asked for yet counts as unknown.
TEST(TxEndEdges, NoCheckGoesOutBeforeTheHalvesAreDurable) {
  BrokerOptions o;
  o.default_queues = 1;
  BrokerHarness h(o);
  h.Hello("p", wire::Role::PRODUCER, "g");
  testing::LogCapture log;
  h.Submit("p", [](auto e) { BuildHalf(e, "tx-checked", "m-checked"); });
  // A round slower than the transaction timeout (an operator's "check
  // now" does the same): the check is due, the halves still unwritten.
  h.time().Advance(o.transaction_timeout + 1s);
  h.Housekeeping();
  EXPECT_TRUE(h.TakeChecks("p").empty()) << "a check before the halves were written";
  // Unasked; the harness writes the round after the answer was handled.
  h.Answer("p", Check{0, "tx-checked", 0}, wire::TxOutcome::COMMIT);
  auto record = h.GetTx("tx-checked");
  ASSERT_TRUE(record.has_value());
  EXPECT_EQ(record->state, storage::TxStateCode::kPrepared) << "decided before it was written";
  h.Housekeeping();
  auto checks = h.TakeChecks("p");
  ASSERT_EQ(checks.size(), 1u);
  h.Answer("p", checks[0], wire::TxOutcome::COMMIT);
  EXPECT_EQ(log.text().find("missing or unreadable"), std::string::npos) << log.text();
  auto got = h.Pull("c", "readers", "orders", 60'000, 0, 10);
  ASSERT_TRUE(got.has_value());
  ASSERT_EQ(got->size(), 1u);
  EXPECT_EQ((*got)[0].id, "m-checked");
}

// A producer resends its half while the first is still being written (its
// SendHalf timed out), and that write fails. The resend waits for the same
// round: it must hear the failure too, never PREPARED for halves that were
// not stored (the producer would run its local transaction and commit
// something the broker does not have). A repeated end likewise.
TEST(TxEndEdges, AResendWaitingOnAFailedRoundHearsTheFailure) {
  FaultLayers layers;
  BrokerOptions o;
  o.default_queues = 1;
  o.storage_layers = layers.Shared();
  BrokerHarness h(o);
  h.Hello("p", wire::Role::PRODUCER, "g");
  const uint64_t first = h.Submit("p", [](auto e) { BuildHalf(e, "tx-resent", "m-resent"); });
  const uint64_t again = h.Submit("p", [](auto e) { BuildHalf(e, "tx-resent", "m-resent"); });
  layers.fs.FailSyncs();
  h.Commit();
  for (uint64_t request : {first, again}) {
    auto reply = h.link().TakeReply("p", request);
    ASSERT_TRUE(reply.has_value()) << request;
    EXPECT_EQ(wire::StatusOf(reply->envelope()).code(), StatusCode::kUnavailable)
        << (request == first ? "the first" : "the resend") << " was answered "
        << (reply->envelope().isSendHalfOk() ? "PREPARED"
                                             : wire::StatusOf(reply->envelope()).ToString());
  }
}

// A commit that cannot read a half (damage) commits the others and logs
// the loss; the half's index entry goes too. Left behind, it would pin its
// segment until retention dropped it, and a later transaction reusing the
// id would uncover it: its own half's put and delete cancel in the index
// overlay.
TEST(TxEndEdges, ACommitDeletesTheIndexEntryOfAHalfItCannotRead) {
  BrokerOptions o;
  o.default_queues = 1;
  o.retention = 1h;
  BrokerHarness h(o);
  h.Hello("p", wire::Role::PRODUCER, "g");
  ASSERT_EQ(h.SendHalf("p", "g", "tx-damaged", {"m-ok", "m-damaged"}), wire::TxState::PREPARED);
  ASSERT_NO_FATAL_FAILURE(h.DamageLog("body of m-damaged"));
  testing::LogCapture log;
  auto [status, state] = h.End("p", "tx-damaged", wire::TxOutcome::COMMIT);
  ASSERT_TRUE(status.ok()) << status.ToString();
  EXPECT_EQ(state, wire::TxState::COMMITTED);
  EXPECT_NE(log.text().find("half message 1 is missing or unreadable"), std::string::npos)
      << log.text();
  int halves = 0;
  ASSERT_TRUE(
      h.core().store().ForEachHalf([&](auto, uint32_t, uint64_t) { return ++halves; }).ok());
  EXPECT_EQ(halves, 0);
  auto got = h.Pull("c", "readers", "orders", 60'000, 0, 10);
  ASSERT_TRUE(got.has_value());
  ASSERT_EQ(got->size(), 1u);
  EXPECT_EQ((*got)[0].id, "m-ok");
  // Reused after the record is forgotten: the new transaction's half is
  // its own, and its commit leaves no reference behind either.
  h.Advance(h.options().resolved_retention + 1s);
  ASSERT_FALSE(h.GetTx("tx-damaged").has_value());
  ASSERT_TRUE(h.core().store().CheckpointNow().ok());  // the index overlay is written out
  ASSERT_EQ(h.SendHalf("p", "g", "tx-damaged", {"m-again-0", "m-again-1"}),
            wire::TxState::PREPARED);
  ASSERT_EQ(h.End("p", "tx-damaged", wire::TxOutcome::COMMIT).second, wire::TxState::COMMITTED);
  halves = 0;
  ASSERT_TRUE(
      h.core().store().ForEachHalf([&](auto, uint32_t, uint64_t) { return ++halves; }).ok());
  EXPECT_EQ(halves, 0);
  got = h.Pull("c", "readers", "orders", 60'000, 0, 10);
  ASSERT_TRUE(got.has_value());
  ASSERT_EQ(got->size(), 2u);
  EXPECT_EQ((*got)[0].id, "m-again-0");
  EXPECT_EQ((*got)[1].id, "m-again-1");
}

// Transaction ids are the producer's to choose. A half of another
// producer group with an id in use (open or recently ended) is not a
// resend of it: answered PREPARED, its messages would not be stored, and
// its producer's commit would end the other group's transaction.
TEST(TxEndEdges, AHalfOfAnotherGroupWithAnIdInUseIsAConflict) {
  BrokerOptions o;
  o.default_queues = 1;
  BrokerHarness h(o);
  h.Hello("pa", wire::Role::PRODUCER, "orders");
  h.Hello("pb", wire::Role::PRODUCER, "billing");
  ASSERT_EQ(h.SendHalf("pa", "orders", "order-42", {"a1"}), wire::TxState::PREPARED);
  for (int ended = 0; ended < 2; ++ended) {
    auto reply = h.Call("pb", [](auto e) { BuildHalf(e, "order-42", "b1", "billing"); });
    ASSERT_TRUE(reply.has_value());
    EXPECT_EQ(wire::StatusOf(reply->envelope()).code(), StatusCode::kConflict)
        << (ended ? "ended" : "open") << ": "
        << (reply->envelope().isSendHalfOk() ? "PREPARED"
                                             : wire::StatusOf(reply->envelope()).ToString());
    if (!ended) {
      ASSERT_EQ(h.End("pa", "order-42", wire::TxOutcome::ROLLBACK).second,
                wire::TxState::ROLLED_BACK);
    }
  }
  // Its own group's resend is still a resend.
  EXPECT_EQ(h.SendHalf("pa", "orders", "order-42", {"a1"}), wire::TxState::ROLLED_BACK);
}

}  // namespace
}  // namespace txmq::broker
