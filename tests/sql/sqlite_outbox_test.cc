// The SQLite outbox against a database file and a real broker: the outbox
// row commits (or rolls back) with the business rows in the caller's own
// transaction, a second writer waits for the first (so no seq gap can make
// a relay skip a row) and gets a clear retryable TIMEOUT past its
// busy_timeout, several relays share one file, and a relay whose claim ran
// out cannot undo the relay that took the row over.
#include <gtest/gtest.h>

#include <future>
#include <set>
#include <thread>

#include "producer/src/library_send.h"
#include "producer/src/sqlite/sqlite_outbox_table.h"
#include "tests/sql/sqlite_fixture.h"
#include "tests/testutil/admin_client.h"
#include "txmq/producer.h"
#include "txmq/sqlite/outbox.h"

namespace txmq {
namespace {

using namespace std::chrono_literals;
using testing::WaitFor;

class SqliteOutbox : public testing::SqliteTest {
 protected:
  sqlite::OutboxOptions Opts(const std::string& instance = "") {
    sqlite::OutboxOptions o;
    o.path = path_;
    o.producer = {.broker = broker_->endpoint(), .group = "orders", .send_timeout = 1s};
    o.lease = 10s;
    o.backoff_initial = 20ms;
    o.backoff_max = 200ms;
    o.poll_interval = 100ms;
    o.instance = instance;
    return o;
  }

  void PlaceOrder(sqlite::Outbox& outbox, sqlite3* db, const std::string& id,
                  const std::string& key, bool commit = true) {
    Sql(db, "BEGIN IMMEDIATE");
    Sql(db, "INSERT INTO orders VALUES ('" + id + "', 1)");
    ASSERT_TRUE(outbox.Add(db, {.topic = "orders", .key = key, .body = id, .id = id}).ok());
    Sql(db, commit ? "COMMIT" : "ROLLBACK");
  }
};

TEST_F(SqliteOutbox, ACommittedRowIsSentOnceAndDeletedARolledBackOneNever) {
  sqlite::Outbox outbox(Opts());
  ASSERT_TRUE(outbox.Start().ok());
  PlaceOrder(outbox, db_.get(), "order-1", "c1");
  PlaceOrder(outbox, db_.get(), "order-2", "c2", /*commit=*/false);
  ASSERT_TRUE(outbox.Flush(10s).ok()) << outbox.stats().last_error;
  EXPECT_EQ(Count("txmq_outbox"), 0);
  EXPECT_EQ(Count("orders"), 1);
  auto got = Receive(1);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].id, "order-1");
  EXPECT_EQ(got[0].body, "order-1");
  EXPECT_EQ(got[0].properties.at("txmq.producer-group"), "orders");
  EXPECT_EQ(outbox.stats().sent, 1u);
}

TEST_F(SqliteOutbox, RowsCommittedWhileNoRelayRunsAreSentByTheNextOne) {
  {
    sqlite::Outbox writer(Opts());  // Add needs no running relay
    ASSERT_TRUE(sqlite::Outbox::Migrate(db_.get()).ok());
    PlaceOrder(writer, db_.get(), "order-1", "c1");
    PlaceOrder(writer, db_.get(), "order-2", "c1");
  }
  EXPECT_EQ(Count("txmq_outbox"), 2);
  sqlite::Outbox outbox(Opts());
  ASSERT_TRUE(outbox.Start().ok());
  ASSERT_TRUE(outbox.Flush(10s).ok()) << outbox.stats().last_error;
  EXPECT_EQ(ByKey(Receive(2))["c1"], (std::vector<std::string>{"order-1", "order-2"}));
}

TEST_F(SqliteOutbox, ARowAcknowledgedByADeadRelayIsSentAgainAndStoredOnce) {
  ASSERT_TRUE(sqlite::Outbox::Migrate(db_.get()).ok());
  sqlite::Outbox writer(Opts());
  PlaceOrder(writer, db_.get(), "order-1", "c1");
  auto claimed = sqlite::ClaimDue(db_.get(), "dead-relay", 300ms, 10, true);
  ASSERT_TRUE(claimed.ok() && claimed->size() == 1u);
  Producer producer({.broker = broker_->endpoint(), .group = "orders"});
  ASSERT_TRUE(producer.Start().ok());
  std::promise<Status> acked;
  producer::SendStamped(producer, (*claimed)[0].message,
                        [&](Result<SendResult> r) { acked.set_value(r.status()); });
  ASSERT_TRUE(acked.get_future().get().ok());  // acknowledged; then the relay died

  sqlite::Outbox outbox(Opts());
  ASSERT_TRUE(outbox.Start().ok());
  ASSERT_TRUE(outbox.Flush(10s).ok()) << outbox.stats().last_error;
  EXPECT_EQ(outbox.stats().sent, 1u) << "sent again once the claim ran out";
  EXPECT_EQ(Count("txmq_outbox"), 0);
  auto got = Receive(1, 500ms);
  ASSERT_EQ(got.size(), 1u) << "stored once";
  EXPECT_EQ(got[0].id, "order-1");
}

TEST_F(SqliteOutbox, AddOutsideATransactionIsRefusedAndWritesNothing) {
  sqlite::Outbox outbox(Opts());
  ASSERT_TRUE(outbox.Start().ok());
  Status s = outbox.Add(db_.get(), {.topic = "orders", .body = "x", .id = "loose"});
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition) << s.ToString();
  EXPECT_NE(s.message().find("BEGIN IMMEDIATE"), std::string::npos) << s.ToString();
  EXPECT_EQ(Count("txmq_outbox"), 0);
  Sql(db_.get(), "BEGIN IMMEDIATE");
  s = outbox.Add(db_.get(), {.topic = "bad topic!", .body = "x"});
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s.ToString();
  s = outbox.Add(db_.get(), {.topic = "orders", .body = "x", .properties = {{"txmq.tx", "t"}}});
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << "reserved property: " << s.ToString();
  ASSERT_TRUE(outbox.Add(db_.get(), {.topic = "orders", .body = "x", .id = "dup"}).ok());
  s = outbox.Add(db_.get(), {.topic = "orders", .body = "x", .id = "dup"});
  EXPECT_EQ(s.code(), StatusCode::kConflict) << s.ToString();
  Sql(db_.get(), "ROLLBACK");
}

TEST_F(SqliteOutbox, TablesAreCreatedOnceAndNewerTablesAreRefusedNamingTheVersion) {
  Status first = sqlite::Outbox::Migrate(db_.get());
  ASSERT_TRUE(first.ok()) << first.ToString();
  ASSERT_TRUE(sqlite::Outbox::Migrate(db_.get()).ok()) << "a second migration changes nothing";
  auto r = sqlite::Exec(db_.get(), "SELECT version FROM txmq_schema WHERE component = 'outbox'");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->rows.at(0).at(0).AsInt(), 2);
  auto mode = sqlite::Exec(db_.get(), "PRAGMA journal_mode");
  ASSERT_TRUE(mode.ok());
  EXPECT_EQ(mode->rows.at(0).at(0).AsText(), "wal");
  Sql(db_.get(), "UPDATE txmq_schema SET version = 99 WHERE component = 'outbox'");
  sqlite::Outbox outbox(Opts());
  Status s = outbox.Start();
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition) << s.ToString();
  EXPECT_NE(s.message().find("version 99"), std::string::npos) << s.ToString();
}

// A database of txmq's outbox version 1 (before txmq_origin) with a
// pending row: the migration adds the origin table and keeps the row.
TEST_F(SqliteOutbox, AVersion1DatabaseMigratesForwardKeepingItsRows) {
  ASSERT_TRUE(sqlite::Outbox::Migrate(db_.get()).ok());
  Sql(db_.get(), "DROP TABLE txmq_origin");  // version 2's only step
  Sql(db_.get(), "UPDATE txmq_schema SET version = 1 WHERE component = 'outbox'");
  Sql(db_.get(), "INSERT INTO txmq_outbox (id, topic, payload) VALUES ('old', 'orders', x'')");
  ASSERT_TRUE(sqlite::Outbox::Migrate(db_.get()).ok());
  auto r = sqlite::Exec(db_.get(), "SELECT version FROM txmq_schema WHERE component = 'outbox'");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->rows.at(0).at(0).AsInt(), 2);
  EXPECT_EQ(Count("txmq_origin"), 0);
  EXPECT_EQ(Count("txmq_outbox"), 1);
  sqlite::Outbox outbox(Opts());
  Sql(db_.get(), "BEGIN IMMEDIATE");
  ASSERT_TRUE(outbox.Add(db_.get(), {.topic = "orders", .body = "x", .id = "after"}).ok());
  Sql(db_.get(), "COMMIT");
  EXPECT_EQ(Count("txmq_origin"), 1) << "Add records its origin once the table exists";
  EXPECT_EQ(Count("txmq_outbox"), 2);
}

// A holds the write lock with its row (seq 1) uncommitted. B cannot take
// seq 2 meanwhile: its BEGIN IMMEDIATE waits, and past B's busy_timeout
// fails with a retryable TIMEOUT that says so; nor can a relay claim. So
// no row commits above an uncommitted lower seq, and once A commits both
// rows go, in order.
TEST_F(SqliteOutbox, ASecondWriterWaitsForTheFirstAndABusyDatabaseIsARetryableTimeout) {
  sqlite::Outbox outbox(Opts());
  ASSERT_TRUE(outbox.Start().ok());
  Sql(db_.get(), "BEGIN IMMEDIATE");
  ASSERT_TRUE(
      outbox.Add(db_.get(), {.topic = "orders", .key = "k", .body = "1", .id = "k-1"}).ok());
  sqlite::Database b = Open(200ms);
  auto begin = sqlite::Exec(b.get(), "BEGIN IMMEDIATE");
  ASSERT_FALSE(begin.ok());
  EXPECT_EQ(begin.status().code(), StatusCode::kTimeout) << begin.status().ToString();
  EXPECT_TRUE(begin.status().IsRetryable());
  EXPECT_NE(begin.status().message().find("busy_timeout"), std::string::npos)
      << begin.status().ToString();
  auto claim = sqlite::ClaimDue(b.get(), "b", 10s, 10, true);
  EXPECT_EQ(claim.status().code(), StatusCode::kTimeout) << "a relay cannot claim meanwhile";
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(outbox.stats().sent, 0u);
  Sql(db_.get(), "COMMIT");
  // From here b is an ordinary writer: the relay now claims and marks k-1,
  // and on a loaded machine one of its write transactions can outlast
  // b's 200 ms.
  Sql(b.get(), "PRAGMA busy_timeout = 10000");
  PlaceOrder(outbox, b.get(), "k-2", "k");
  ASSERT_TRUE(outbox.Flush(10s).ok()) << outbox.stats().last_error;
  EXPECT_EQ(ByKey(Receive(2))["k"], (std::vector<std::string>{"k-1", "k-2"}));
}

TEST_F(SqliteOutbox, TwoRelaysOnOneDatabaseSendEveryRowOnceInKeyOrder) {
  auto o1 = Opts("relay-1"), o2 = Opts("relay-2");
  o1.max_in_flight = o2.max_in_flight = 4;
  sqlite::Outbox relay1(o1), relay2(o2);
  ASSERT_TRUE(relay1.Start().ok());
  ASSERT_TRUE(relay2.Start().ok());
  constexpr int kRows = 200, kKeys = 8;
  std::set<std::string> ids;
  for (int i = 0; i < kRows; i += 10) {
    // Add wakes the adding relay; alternating them wakes each in turn, so
    // neither waits out its poll interval while the other sends everything
    // (on a fast disk one relay can drain 200 rows within one interval).
    sqlite::Outbox& adder = (i / 10) % 2 == 0 ? relay1 : relay2;
    Sql(db_.get(), "BEGIN IMMEDIATE");
    for (int j = i; j < i + 10; ++j) {
      const std::string id = "r-" + std::to_string(1000 + j);
      ids.insert(id);
      ASSERT_TRUE(
          adder
              .Add(
                  db_.get(),
                  {.topic = "orders", .key = "k" + std::to_string(j % kKeys), .body = id, .id = id})
              .ok());
    }
    Sql(db_.get(), "COMMIT");
    // Each burst sent before the next: the relay its Add woke takes it (on
    // a loaded machine the other could otherwise drain everything first,
    // and the test would not show two relays at work).
    ASSERT_TRUE(
        WaitFor([&] { return relay1.stats().sent + relay2.stats().sent >= ids.size(); }, 30s));
  }
  ASSERT_TRUE(relay1.Flush(30s).ok()) << relay1.stats().last_error;
  EXPECT_EQ(relay1.stats().sent + relay2.stats().sent, static_cast<uint64_t>(kRows));
  EXPECT_GT(relay2.stats().sent, 0u) << "both relays took part";
  ExpectEachOnceInKeyOrder(Receive(kRows), ids);
}

TEST_F(SqliteOutbox, ARelayPausedPastItsLeaseCannotUndoTheTakeover) {
  ASSERT_TRUE(sqlite::Outbox::Migrate(db_.get()).ok());
  sqlite::Outbox outbox(Opts());  // Add only; not started
  Sql(db_.get(), "BEGIN IMMEDIATE");
  ASSERT_TRUE(outbox.Add(db_.get(), {.topic = "orders", .body = "x", .id = "row"}).ok());
  Sql(db_.get(), "COMMIT");
  // a's claim must outlast the next statement even on a loaded machine,
  // and run out within the wait below.
  auto a = sqlite::ClaimDue(db_.get(), "a", 1500ms, 10, true);
  ASSERT_TRUE(a.ok() && a->size() == 1u);
  auto none = sqlite::ClaimDue(db_.get(), "b", 10s, 10, true);
  ASSERT_TRUE(none.ok() && none->empty()) << "claimed rows are not claimed twice";
  std::vector<sql::ClaimedRow> b;
  ASSERT_TRUE(WaitFor([&] {
    auto r = sqlite::ClaimDue(db_.get(), "b", 10s, 10, true);
    if (r.ok()) b = *r;
    return !b.empty();
  }));
  EXPECT_GT(b[0].fence, (*a)[0].fence);
  auto late = sqlite::MarkFailed(db_.get(), "row", (*a)[0].fence, true, 0ms, "late");
  ASSERT_TRUE(late.ok());
  EXPECT_FALSE(*late) << "a's late failure must not park b's claim";
  auto late_sent = sqlite::MarkSent(db_.get(), "row", (*a)[0].fence);
  ASSERT_TRUE(late_sent.ok());
  EXPECT_FALSE(*late_sent);
  EXPECT_EQ(Count("txmq_outbox"), 1);
  auto sent = sqlite::MarkSent(db_.get(), "row", b[0].fence);
  ASSERT_TRUE(sent.ok());
  EXPECT_TRUE(*sent);
  EXPECT_EQ(Count("txmq_outbox"), 0);
}

TEST_F(SqliteOutbox, ARefusedRowIsParkedHoldsItsKeyAndARequeueSendsBothInOrder) {
  broker_->Stop();
  options_.auto_create_topics = false;
  broker_ = testing::StartBroker(options_);
  ASSERT_NE(broker_, nullptr);
  testing::AdminClient admin(broker_->endpoint());
  ASSERT_TRUE(
      admin.Call([](wire::Envelope::Builder e) { e.initCreateTopic().setTopic("orders"); }).ok());
  sqlite::Outbox outbox(Opts());
  ASSERT_TRUE(outbox.Start().ok());
  Sql(db_.get(), "BEGIN IMMEDIATE");
  ASSERT_TRUE(outbox.Add(db_.get(), {.topic = "later", .key = "k", .body = "1", .id = "k-1"}).ok());
  Sql(db_.get(), "COMMIT");
  ASSERT_TRUE(WaitFor([&] { return outbox.stats().parked == 1; }));
  PlaceOrder(outbox, db_.get(), "k-2", "k");
  Status flush = outbox.Flush(5s);
  EXPECT_EQ(flush.code(), StatusCode::kFailedPrecondition) << flush.ToString();
  auto pending = sqlite::Outbox::List(db_.get(), false);
  ASSERT_TRUE(pending.ok());
  ASSERT_EQ(pending->size(), 1u);
  EXPECT_EQ((*pending)[0].blocked_by, "k-1");
  auto parked = sqlite::Outbox::List(db_.get(), true);
  ASSERT_TRUE(parked.ok() && parked->size() == 1u);
  EXPECT_NE((*parked)[0].last_error.find("NOT_FOUND"), std::string::npos)
      << (*parked)[0].last_error;
  EXPECT_EQ(sqlite::Outbox::Requeue(db_.get(), "nope").code(), StatusCode::kNotFound);

  ASSERT_TRUE(
      admin.Call([](wire::Envelope::Builder e) { e.initCreateTopic().setTopic("later"); }).ok());
  ASSERT_TRUE(sqlite::Outbox::Requeue(db_.get(), "k-1").ok());
  ASSERT_TRUE(outbox.Flush(10s).ok()) << outbox.stats().last_error;
  EXPECT_EQ(outbox.stats().parked, 0u);
  auto got = Receive(1);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].id, "k-2") << "k-1 went to topic 'later', after it";
}

// As on PostgreSQL: nothing is due in an empty table, and a claimed row,
// and the rows of its key behind it, are due when the claim runs out, so a
// relay with nothing to claim sleeps instead of asking every millisecond.
TEST_F(SqliteOutbox, AClaimedRowAndTheRowsOfItsKeyBehindItAreDueWhenTheClaimRunsOut) {
  ASSERT_TRUE(sqlite::Outbox::Migrate(db_.get()).ok());
  auto due = sqlite::NextDueIn(db_.get());
  ASSERT_TRUE(due.ok()) << due.status().ToString();
  EXPECT_EQ(due->count(), -1);
  sqlite::Outbox writer(Opts());
  PlaceOrder(writer, db_.get(), "k-1", "k");
  PlaceOrder(writer, db_.get(), "k-2", "k");
  PlaceOrder(writer, db_.get(), "u-1", "");
  due = sqlite::NextDueIn(db_.get());
  ASSERT_TRUE(due.ok()) << due.status().ToString();
  EXPECT_EQ(due->count(), 0);
  auto claimed = sqlite::ClaimDue(db_.get(), "r", 10s, 10, true);
  ASSERT_TRUE(claimed.ok() && claimed->size() == 2u) << "k-1 and u-1; k-2 waits behind k-1";
  due = sqlite::NextDueIn(db_.get());
  ASSERT_TRUE(due.ok()) << due.status().ToString();
  EXPECT_GT(*due, 9s) << "nothing is due before the claim runs out";
  EXPECT_LE(*due, 10s);
  const int64_t k1_fence =
      (*claimed)[0].message.id == "k-1" ? (*claimed)[0].fence : (*claimed)[1].fence;
  auto sent = sqlite::MarkSent(db_.get(), "k-1", k1_fence);
  ASSERT_TRUE(sent.ok() && *sent);
  due = sqlite::NextDueIn(db_.get());
  ASSERT_TRUE(due.ok()) << due.status().ToString();
  EXPECT_EQ(due->count(), 0) << "k-2 is due once k-1 is gone";
}

}  // namespace
}  // namespace txmq
