// The undo side on both SQL backends (TYPED_TEST): Inbox::Undo runs once,
// after its original, and an undo that comes first fences the original
// (net effect zero, Lookup says fenced then skipped); a compensation
// undoes a committed original once however often it is delivered, fences
// an original that has not committed (whose Add or RecordCommit then
// fails), and with only_recorded skips originals the database never
// committed.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <type_traits>

#include "consumer/src/compensation_message.h"
#include "protocol/src/util.h"
#include "tests/sql/sql_backends.h"
#include "txmq/properties.h"

namespace txmq::testing {
namespace {

template <typename B>
class SqlUndo : public SqlBackendTest<B> {
 protected:
  using Handle = typename B::Handle;

  // Places the order the message's body names.
  auto PlaceOrder(std::atomic<int>& runs) {
    return [&runs](Handle h, const Received& m) {
      ++runs;
      Status s = B::Exec(h, "INSERT INTO orders VALUES ($1, 1)", {m.body});
      return s.ok() ? ConsumeResult::Success() : ConsumeResult::RetryLater();
    };
  }
  // Cancels it again.
  auto CancelOrder(std::atomic<int>& runs) {
    return [&runs](Handle h, const Received& m) {
      ++runs;
      Status s = B::Exec(h, "DELETE FROM orders WHERE id = $1", {m.body});
      return s.ok() ? ConsumeResult::Success() : ConsumeResult::RetryLater();
    };
  }

  // The original message `id` of producer group "orders" (placing order
  // `id`), optionally in transaction `tx`.
  static Message Original(const std::string& id, const std::string& tx = "") {
    Message m{.topic = "orders", .body = id, .id = id};
    if (!tx.empty()) m.properties[property::kTransactionId] = tx;
    return m;
  }

  // The compensation `compensation_id` that consumer group `group` sends
  // for `original`, as the undo consumer receives it.
  static Received CompensationFor(const Message& original, const std::string& compensation_id,
                                  const std::string& group = "billing") {
    Received o;
    o.id = original.id;
    o.topic = original.topic;
    o.body = original.body;
    o.properties = original.properties;
    o.properties[property::kProducerGroup] = "orders";
    auto c = consumer::MakeCompensation(o, group, "out of stock");
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    Received r;
    r.id = compensation_id;
    r.topic = c->topic;
    r.key = c->key;
    r.body = c->body;
    r.properties = c->properties;
    return r;
  }

  // Commits order `m.id` with its outbox row on the fixture's handle.
  void CommitWithOutbox(typename B::Outbox& outbox, const Message& m) {
    Handle h = this->main_handle();
    this->Run(h, B::kBegin);
    this->Run(h, "INSERT INTO orders VALUES ($1, 1)", {m.id});
    Status s = outbox.Add(h, m);
    ASSERT_TRUE(s.ok()) << s.ToString();
    this->Run(h, "COMMIT");
  }

  // The undo of a compensation: cancels the order named by the original.
  auto UndoOrder(std::atomic<int>& runs) {
    return [&runs](Handle h, const Compensation& c) {
      ++runs;
      Status s = B::Exec(h, "DELETE FROM orders WHERE id = $1", {c.original_id});
      return s.ok() ? ConsumeResult::Success() : ConsumeResult::RetryLater();
    };
  }

  Handler Compensations(typename B::Inbox& inbox, std::atomic<int>& runs,
                        bool only_recorded = true) {
    auto h = B::CompensationHandler(inbox, UndoOrder(runs), {.only_recorded = only_recorded});
    EXPECT_TRUE(h.ok()) << h.status().ToString();
    return h.ok() ? std::move(*h) : Handler();
  }

  static InboxState StateOf(typename B::Inbox& inbox, const std::string& key) {
    auto r = inbox.Lookup(key);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_TRUE(r.ok() && r->has_value()) << "no record of " << key;
    return r.ok() && r->has_value() ? (*r)->state : InboxState::kProcessed;
  }
  static std::string NoteOf(typename B::Inbox& inbox, const std::string& key) {
    auto r = inbox.Lookup(key);
    return r.ok() && r->has_value() ? (*r)->note : "";
  }
};

TYPED_TEST_SUITE(SqlUndo, SqlBackends, SqlBackendNames);

Received Delivery(const std::string& id, const std::string& body) {
  Received m;
  m.id = id;
  m.topic = "orders";
  m.body = body;
  return m;
}

// The body of an undo message names the original's id.
std::string Undoes(const Received& m) { return m.body; }

TYPED_TEST(SqlUndo, AnUndoRunsOnceAfterItsOriginal) {
  auto inbox = this->OpenInbox("billing");
  ASSERT_NE(inbox, nullptr);
  std::atomic<int> placed{0}, cancelled{0};
  Handler original = inbox->Idempotent(this->PlaceOrder(placed));
  Handler undo = inbox->Undo(this->CancelOrder(cancelled), Undoes);
  ASSERT_EQ(original(Delivery("o-1", "o-1")).kind(), ConsumeResult::Kind::kSuccess);
  EXPECT_EQ(this->StateOf(*inbox, "o-1"), InboxState::kProcessed);
  ASSERT_EQ(undo(Delivery("u-1", "o-1")).kind(), ConsumeResult::Kind::kSuccess);
  ASSERT_EQ(undo(Delivery("u-1", "o-1")).kind(), ConsumeResult::Kind::kSuccess);
  ASSERT_EQ(undo(Delivery("u-2", "o-1")).kind(), ConsumeResult::Kind::kSuccess)
      << "a second undo of one original";
  ASSERT_EQ(original(Delivery("o-1", "o-1")).kind(), ConsumeResult::Kind::kSuccess);
  EXPECT_EQ(placed, 1);
  EXPECT_EQ(cancelled, 1);
  EXPECT_EQ(this->Count("orders"), 0);
  EXPECT_EQ(this->StateOf(*inbox, "o-1"), InboxState::kUndone);
  EXPECT_NE(this->NoteOf(*inbox, "o-1").find("u-1"), std::string::npos);
}

TYPED_TEST(SqlUndo, AnUndoHandlerThatEndsTheTransactionItselfIsGivenBackNotRecorded) {
  auto inbox = this->OpenInbox("billing");
  ASSERT_NE(inbox, nullptr);
  std::atomic<int> placed{0};
  Handler original = inbox->Idempotent(this->PlaceOrder(placed));
  ASSERT_EQ(original(Delivery("o-1", "o-1")).kind(), ConsumeResult::Kind::kSuccess);
  Handler undo = inbox->Undo(
      [](typename TypeParam::Handle h, const Received& m) {
        (void)TypeParam::Exec(h, "DELETE FROM orders WHERE id = $1", {m.body});
        (void)TypeParam::Exec(h, "ROLLBACK", {});
        return ConsumeResult::Success();
      },
      Undoes);
  EXPECT_EQ(undo(Delivery("u-1", "o-1")).kind(), ConsumeResult::Kind::kRetryLater);
  EXPECT_EQ(this->StateOf(*inbox, "o-1"), InboxState::kProcessed) << "not recorded as undone";
  EXPECT_EQ(this->Count("orders"), 1);
}

TYPED_TEST(SqlUndo, AnUndoBeforeItsOriginalFencesItAndTheNetEffectIsZero) {
  auto inbox = this->OpenInbox("billing");
  ASSERT_NE(inbox, nullptr);
  std::atomic<int> placed{0}, cancelled{0};
  Handler original = inbox->Idempotent(this->PlaceOrder(placed));
  Handler undo = inbox->Undo(this->CancelOrder(cancelled), Undoes);
  ASSERT_EQ(undo(Delivery("u-1", "o-1")).kind(), ConsumeResult::Kind::kSuccess);
  EXPECT_EQ(cancelled, 0) << "nothing to undo yet: no business work";
  EXPECT_EQ(this->StateOf(*inbox, "o-1"), InboxState::kFenced);
  ASSERT_EQ(original(Delivery("o-1", "o-1")).kind(), ConsumeResult::Kind::kSuccess)
      << "acknowledged without running";
  ASSERT_EQ(original(Delivery("o-1", "o-1")).kind(), ConsumeResult::Kind::kSuccess);
  ASSERT_EQ(undo(Delivery("u-1", "o-1")).kind(), ConsumeResult::Kind::kSuccess);
  EXPECT_EQ(placed, 0);
  EXPECT_EQ(cancelled, 0);
  EXPECT_EQ(this->Count("orders"), 0);
  EXPECT_EQ(this->StateOf(*inbox, "o-1"), InboxState::kSkipped);
  EXPECT_NE(this->NoteOf(*inbox, "o-1").find("after its undo"), std::string::npos);
}

TYPED_TEST(SqlUndo, ACompensationDeliveredTwiceUndoesOnce) {
  auto outbox = this->MakeOutbox();
  auto inbox = this->OpenInbox("orders-undo");
  ASSERT_NE(inbox, nullptr);
  const Message order = this->Original("order-1");
  this->CommitWithOutbox(*outbox, order);
  ASSERT_EQ(this->Count("orders"), 1);
  std::atomic<int> undos{0};
  Handler handler = this->Compensations(*inbox, undos);
  const Received c = this->CompensationFor(order, "c-1");
  EXPECT_EQ(handler(c).kind(), ConsumeResult::Kind::kSuccess);
  EXPECT_EQ(handler(c).kind(), ConsumeResult::Kind::kSuccess) << "redelivered";
  EXPECT_EQ(handler(this->CompensationFor(order, "c-2", "shipping")).kind(),
            ConsumeResult::Kind::kSuccess)
      << "another consumer group failed too";
  EXPECT_EQ(undos, 1);
  EXPECT_EQ(this->Count("orders"), 0);
  EXPECT_EQ(this->StateOf(*inbox, "compensation/order-1"), InboxState::kProcessed);
}

TYPED_TEST(SqlUndo, ACompensationBeforeTheOriginalCommitsFencesIt) {
  auto outbox = this->MakeOutbox();
  auto inbox = this->OpenInbox("orders-undo");
  ASSERT_NE(inbox, nullptr);
  std::atomic<int> undos{0};
  Handler handler = this->Compensations(*inbox, undos);
  const Message order = this->Original("order-2");
  EXPECT_EQ(handler(this->CompensationFor(order, "c-1")).kind(), ConsumeResult::Kind::kSuccess);
  EXPECT_EQ(undos, 0);
  EXPECT_EQ(this->StateOf(*inbox, "compensation/order-2"), InboxState::kSkipped);
  EXPECT_NE(this->NoteOf(*inbox, "compensation/order-2").find("fenced"), std::string::npos)
      << this->NoteOf(*inbox, "compensation/order-2");
  // The original's transaction, later: its Add fails, so it cannot commit.
  typename TypeParam::Handle h = this->main_handle();
  this->Run(h, TypeParam::kBegin);
  this->Run(h, "INSERT INTO orders VALUES ($1, 1)", {order.id});
  Status s = outbox->Add(h, order);
  EXPECT_EQ(s.code(), StatusCode::kAborted) << s.ToString();
  EXPECT_NE(s.message().find("order-2"), std::string::npos) << s.ToString();
  this->Run(h, "ROLLBACK");
  EXPECT_EQ(this->Count("orders"), 0);
  EXPECT_EQ(this->Count("txmq_outbox"), 0);
}

TYPED_TEST(SqlUndo, ACompensationOfATransactionUndoesItIfCommittedAndFencesItIfNot) {
  auto records = this->OpenRecords();
  auto inbox = this->OpenInbox("orders-undo");
  ASSERT_NE(records, nullptr);
  ASSERT_NE(inbox, nullptr);
  std::atomic<int> undos{0};
  Handler handler = this->Compensations(*inbox, undos);
  typename TypeParam::Handle h = this->main_handle();
  const Message committed = this->Original("order-3", "tx-3");
  this->Run(h, TypeParam::kBegin);
  this->Run(h, "INSERT INTO orders VALUES ($1, 1)", {committed.id});
  ASSERT_TRUE(records->RecordCommit(h, committed).ok());
  this->Run(h, "COMMIT");
  EXPECT_EQ(handler(this->CompensationFor(committed, "c-3")).kind(), ConsumeResult::Kind::kSuccess);
  EXPECT_EQ(undos, 1);
  EXPECT_EQ(this->Count("orders"), 0);

  const Message late = this->Original("order-4", "tx-4");
  EXPECT_EQ(handler(this->CompensationFor(late, "c-4")).kind(), ConsumeResult::Kind::kSuccess);
  EXPECT_EQ(undos, 1);
  EXPECT_EQ(this->StateOf(*inbox, "compensation/order-4"), InboxState::kSkipped);
  this->Run(h, TypeParam::kBegin);
  Status s = records->RecordCommit(h, late);
  EXPECT_EQ(s.code(), StatusCode::kConflict) << "the local transaction must roll back";
  this->Run(h, "ROLLBACK");
  EXPECT_EQ(records->Check({.transaction_id = "tx-4"}), TxState::kRollback)
      << "a check-back answers what the fence decided";
}

TYPED_TEST(SqlUndo, OnlyRecordedSkipsOriginalsThisDatabaseNeverCommitted) {
  auto outbox = this->MakeOutbox();
  auto inbox = this->OpenInbox("orders-undo");
  ASSERT_NE(inbox, nullptr);
  std::atomic<int> undos{0};
  Handler recorded_only = this->Compensations(*inbox, undos);
  // Order 5 was committed with no outbox row here (another service's
  // message, or a plain Producer's).
  this->Run(this->main_handle(), "INSERT INTO orders VALUES ('order-5', 1)");
  EXPECT_EQ(recorded_only(this->CompensationFor(this->Original("order-5"), "c-5")).kind(),
            ConsumeResult::Kind::kSuccess);
  EXPECT_EQ(undos, 0);
  EXPECT_EQ(this->Count("orders"), 1);
  EXPECT_EQ(this->StateOf(*inbox, "compensation/order-5"), InboxState::kSkipped);
  EXPECT_NE(this->NoteOf(*inbox, "compensation/order-5").find("not undone"), std::string::npos);

  auto other = this->OpenInbox("orders-undo-all");
  ASSERT_NE(other, nullptr);
  Handler every = this->Compensations(*other, undos, /*only_recorded=*/false);
  EXPECT_EQ(every(this->CompensationFor(this->Original("order-5"), "c-5")).kind(),
            ConsumeResult::Kind::kSuccess);
  EXPECT_EQ(undos, 1) << "without only_recorded the handler decides";
  EXPECT_EQ(this->Count("orders"), 0);
}

// Through the broker: the inventory's handler fails an order for good;
// its inbox sends the compensation through the outbox, the order
// service's undo consumer (OnCompensation) cancels the order once, and
// the same compensation sent again (as another failing consumer on txmq
// 0.1 would) undoes nothing more.
TYPED_TEST(SqlUndo, AFailedOrderIsCompensatedThroughTheBrokerAndUndoneOnce) {
  using namespace std::chrono_literals;
  auto outbox = this->MakeOutbox();
  ASSERT_TRUE(outbox->Start().ok());
  auto undo_inbox = this->OpenInbox("orders-undo");
  auto inventory_inbox = this->OpenInbox("inventory", outbox.get());
  ASSERT_NE(undo_inbox, nullptr);
  ASSERT_NE(inventory_inbox, nullptr);
  std::atomic<int> undos{0};
  Consumer undo_consumer(
      {.broker = this->broker_->endpoint(), .group = "orders-undo", .long_poll = 200ms});
  ASSERT_TRUE(
      TypeParam::OnCompensation(undo_consumer, *undo_inbox, "orders", this->UndoOrder(undos)).ok());
  Consumer inventory(
      {.broker = this->broker_->endpoint(), .group = "inventory", .long_poll = 200ms});
  ASSERT_TRUE(inventory
                  .Subscribe("orders", inventory_inbox->Idempotent(
                                           [](typename TypeParam::Handle, const Received&) {
                                             return ConsumeResult::Compensate("out of stock");
                                           }))
                  .ok());
  ASSERT_TRUE(undo_consumer.Start().ok());
  ASSERT_TRUE(inventory.Start().ok());
  this->CommitWithOutbox(*outbox, this->Original("order-8"));
  // The handler counts its run before its transaction commits.
  ASSERT_TRUE(WaitFor([&] { return undos == 1 && this->Count("orders") == 0; }, 20s))
      << undos << " runs, " << this->Count("orders") << " orders";

  Producer resend({.broker = this->broker_->endpoint(), .group = "manual"});
  ASSERT_TRUE(resend.Start().ok());
  ASSERT_TRUE(resend
                  .Send({.topic = CompensationTopic("orders"),
                         .body = "out of stock",
                         // txmq 0.1's names: a user cannot set "txmq." ones.
                         .properties = {{"txmq-original-id", "order-8"},
                                        {"txmq-consumer-group", "shipping"}}})
                  .ok());
  // Nothing to wait for when nothing happens: give the resend's delivery
  // the time it took the first compensation to arrive, and more.
  std::this_thread::sleep_for(1s);
  inventory.Shutdown();
  undo_consumer.Shutdown();
  outbox->Shutdown();
  EXPECT_EQ(undos, 1);
}

// A database whose outbox tables were upgraded from version 1 has no
// origin records of messages added before: a compensation for one of
// those is retried (and ends with an operator), never fenced or skipped
// as if the message had not committed.
TYPED_TEST(SqlUndo, AMessageFromBeforeTheUpgradeIsNeitherFencedNorSkipped) {
  auto outbox = this->MakeOutbox();
  auto h = this->main_handle();
  EXPECT_EQ(this->Count("txmq_schema WHERE component = 'outbox.origins'"), 0)
      << "a new database records every origin";
  this->Run(h, "DROP TABLE txmq_origin");
  this->Run(h, "UPDATE txmq_schema SET version = 1 WHERE component = 'outbox'");
  ASSERT_TRUE(TypeParam::Outbox::Migrate(h).ok());
  EXPECT_EQ(this->Count("txmq_schema WHERE component = 'outbox.origins'"), 1);
  auto inbox = this->OpenInbox("orders-undo");
  ASSERT_NE(inbox, nullptr);
  std::atomic<int> undos{0};
  Handler handler = this->Compensations(*inbox, undos);
  const Message old_order = this->Original(NewUuidV7());  // as if added before the upgrade
  EXPECT_EQ(handler(this->CompensationFor(old_order, "c-7")).kind(),
            ConsumeResult::Kind::kRetryLater);
  EXPECT_EQ(this->Count("txmq_origin"), 0) << "no fence";
  EXPECT_EQ(undos, 0);
}

// Origin records outlive their sent rows by the record horizon only; the
// relay removes older ones when idle (its first idle pass, then once a
// minute).
TYPED_TEST(SqlUndo, TheRelayRemovesOriginRecordsPastTheHorizon) {
  {
    auto outbox = this->MakeOutbox(std::chrono::milliseconds(1));
    this->CommitWithOutbox(*outbox, this->Original("order-6"));
    EXPECT_EQ(this->Count("txmq_origin"), 1);
    ASSERT_TRUE(outbox->Start().ok());
    EXPECT_TRUE(outbox->Flush(std::chrono::seconds(10)).ok());  // sent
    outbox->Shutdown();
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(20));  // past the 1 ms horizon
  // A relay sweeps when it starts, and a minute apart after that.
  auto outbox = this->MakeOutbox(std::chrono::milliseconds(1));
  ASSERT_TRUE(outbox->Start().ok());
  EXPECT_TRUE(WaitFor([&] { return this->Count("txmq_origin") == 0; }));
  outbox->Shutdown();
}

// An origin record outlives the horizon while its row is still in the
// outbox (parked, or retried for long): its message has not been sent,
// and a compensation of it, once it is, must still find it committed.
TYPED_TEST(SqlUndo, TheOriginOfARowStillInTheOutboxIsKeptPastTheHorizon) {
  auto outbox = this->MakeOutbox(std::chrono::milliseconds(1));
  this->CommitWithOutbox(*outbox, this->Original("order-9"));
  this->Run(this->main_handle(), "UPDATE txmq_outbox SET state = 1");  // parked: not sent
  // The origin of a message sent before: the relay's first sweep removes it.
  this->Run(this->main_handle(),
            "INSERT INTO txmq_origin (message_id, state) VALUES ('order-sent', 'C')");
  std::this_thread::sleep_for(std::chrono::milliseconds(20));  // both past the 1 ms horizon
  ASSERT_TRUE(outbox->Start().ok());
  EXPECT_TRUE(WaitFor([&] { return this->Count("txmq_origin") <= 1; }));
  EXPECT_EQ(this->Count("txmq_origin"), 1) << "the parked row's origin went with the sent one's";
  outbox->Shutdown();
}

// A row sent long after its Add (an outage, a park and a requeue): its
// origin record is kept for the horizon from the send, as a compensation
// of it may come back that long after, not from the Add.
TYPED_TEST(SqlUndo, AnOriginIsKeptForTheHorizonAfterALateSend) {
  constexpr bool kPg = std::is_same_v<TypeParam, PgBackend>;
  const std::string two_hours_ago = kPg ? "- interval '2 hours'" : "- 7200000";
  {
    auto outbox = this->MakeOutbox(std::chrono::hours(1));
    this->CommitWithOutbox(*outbox, this->Original("order-12"));
    this->Run(this->main_handle(),
              "UPDATE txmq_outbox SET created_at = created_at " + two_hours_ago);
    this->Run(this->main_handle(),
              "UPDATE txmq_origin SET recorded_at = recorded_at " + two_hours_ago);
    ASSERT_TRUE(outbox->Start().ok());
    EXPECT_TRUE(outbox->Flush(std::chrono::seconds(10)).ok());  // sent now
    outbox->Shutdown();
  }
  // The next relay's first sweep: it removes an old record of a message
  // sent long ago, and keeps order-12's.
  this->Run(this->main_handle(),
            "INSERT INTO txmq_origin (message_id, state) VALUES ('order-sent', 'C')");
  this->Run(this->main_handle(), "UPDATE txmq_origin SET recorded_at = recorded_at " +
                                     two_hours_ago + " WHERE message_id = 'order-sent'");
  auto outbox = this->MakeOutbox(std::chrono::hours(1));
  ASSERT_TRUE(outbox->Start().ok());
  EXPECT_TRUE(WaitFor([&] { return this->Count("txmq_origin") <= 1; }));
  EXPECT_EQ(this->Count("txmq_origin"), 1) << "order-12's record went 2 hours after its Add";
  outbox->Shutdown();
}

TYPED_TEST(SqlUndo, BadArgumentsAreRefusedNamingThem) {
  auto inbox = this->OpenInbox("orders-undo");
  ASSERT_NE(inbox, nullptr);
  auto empty = TypeParam::CompensationHandler(*inbox, nullptr, {});
  EXPECT_EQ(empty.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(empty.status().message().find("handler"), std::string::npos);
  std::atomic<int> undos{0};
  auto horizon = TypeParam::CompensationHandler(*inbox, this->UndoOrder(undos),
                                                {.record_horizon = std::chrono::milliseconds(0)});
  EXPECT_EQ(horizon.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(horizon.status().message().find("record_horizon"), std::string::npos);
  auto outbox = this->MakeOutbox(std::chrono::milliseconds(0));
  Status s = outbox->Start();
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("record_horizon (0 ms)"), std::string::npos) << s.ToString();
}

}  // namespace
}  // namespace txmq::testing
