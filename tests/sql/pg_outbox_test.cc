// The PostgreSQL outbox against a real PostgreSQL server and a real
// broker: the outbox row commits (or rolls back) with the business rows in
// the caller's own transaction, a late commit of an earlier sequence is
// never skipped, writers of one key arrive in commit order, several relays
// share one table, and a relay whose claim ran out cannot undo the relay
// that took the row over.
#include <gtest/gtest.h>
#include <libpq-fe.h>

#include <future>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "producer/src/library_send.h"
#include "producer/src/pg/pg_connection.h"
#include "producer/src/pg/pg_outbox_table.h"
#include "tests/sql/pg_fixture.h"
#include "tests/testutil/admin_client.h"
#include "tests/testutil/testutil.h"
#include "txmq/consumer.h"
#include "txmq/pg/outbox.h"
#include "txmq/producer.h"

namespace txmq {
namespace {

using namespace std::chrono_literals;
using testing::WaitFor;

class PgOutbox : public testing::PgTest {
 protected:
  pg::OutboxOptions Opts(const std::string& instance = "") {
    pg::OutboxOptions o;
    o.conninfo = conninfo_;
    o.producer = {.broker = broker_->endpoint(), .group = "orders", .send_timeout = 1s};
    o.lease = 10s;
    o.backoff_initial = 20ms;
    o.backoff_max = 200ms;
    o.poll_interval = 200ms;
    o.instance = instance;
    return o;
  }

  // One business row and its outbox row in one transaction of `conn`.
  void PlaceOrder(pg::Outbox& outbox, PGconn* conn, const std::string& id, const std::string& key,
                  bool commit = true) {
    Sql(conn, "BEGIN");
    Sql(conn, "INSERT INTO orders VALUES ('" + id + "', 1)");
    ASSERT_TRUE(outbox.Add(conn, {.topic = "orders", .key = key, .body = id, .id = id}).ok());
    Sql(conn, commit ? "COMMIT" : "ROLLBACK");
  }
};

TEST_F(PgOutbox, ACommittedRowIsSentOnceAndDeletedARolledBackOneNever) {
  pg::Outbox outbox(Opts());
  ASSERT_TRUE(outbox.Start().ok());
  PlaceOrder(outbox, conn_.get(), "order-1", "c1");
  PlaceOrder(outbox, conn_.get(), "order-2", "c2", /*commit=*/false);
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

// The service died after its commit, before any relay sent the row: the
// row waits in the table, and the next relay to start sends it.
TEST_F(PgOutbox, RowsCommittedWhileNoRelayRunsAreSentByTheNextOne) {
  {
    pg::Outbox writer(Opts());  // Add needs no running relay
    ASSERT_TRUE(pg::Outbox::Migrate(conn_.get()).ok());
    PlaceOrder(writer, conn_.get(), "order-1", "c1");
    PlaceOrder(writer, conn_.get(), "order-2", "c1");
  }
  EXPECT_EQ(Count("txmq_outbox"), 2);
  pg::Outbox outbox(Opts());
  ASSERT_TRUE(outbox.Start().ok());
  ASSERT_TRUE(outbox.Flush(10s).ok()) << outbox.stats().last_error;
  EXPECT_EQ(ByKey(Receive(2))["c1"], (std::vector<std::string>{"order-1", "order-2"}));
}

// A relay died after the broker acknowledged the row and before it
// deleted it: the table holds the row under that relay's claim. Once the
// claim runs out another relay sends it again, and the broker's dedup
// window stores it once.
TEST_F(PgOutbox, ARowAcknowledgedByADeadRelayIsSentAgainAndStoredOnce) {
  ASSERT_TRUE(pg::Outbox::Migrate(conn_.get()).ok());
  pg::Outbox writer(Opts());
  PlaceOrder(writer, conn_.get(), "order-1", "c1");
  auto claimed = pg::ClaimDue(conn_.get(), "dead-relay", 300ms, 10, true);
  ASSERT_TRUE(claimed.ok() && claimed->size() == 1u);
  Producer producer({.broker = broker_->endpoint(), .group = "orders"});
  ASSERT_TRUE(producer.Start().ok());
  std::promise<Status> acked;
  producer::SendStamped(producer, (*claimed)[0].message,
                        [&](Result<SendResult> r) { acked.set_value(r.status()); });
  ASSERT_TRUE(acked.get_future().get().ok());  // acknowledged; then the relay died

  pg::Outbox outbox(Opts());
  ASSERT_TRUE(outbox.Start().ok());
  ASSERT_TRUE(outbox.Flush(10s).ok()) << outbox.stats().last_error;
  EXPECT_EQ(outbox.stats().sent, 1u) << "sent again once the claim ran out";
  EXPECT_EQ(Count("txmq_outbox"), 0);
  auto got = Receive(1, 500ms);
  ASSERT_EQ(got.size(), 1u) << "stored once";
  EXPECT_EQ(got[0].id, "order-1");
}

TEST_F(PgOutbox, AddOutsideATransactionIsRefusedAndWritesNothing) {
  pg::Outbox outbox(Opts());
  ASSERT_TRUE(outbox.Start().ok());
  Status s = outbox.Add(conn_.get(), {.topic = "orders", .body = "x", .id = "loose"});
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition) << s.ToString();
  EXPECT_NE(s.message().find("BEGIN"), std::string::npos) << s.ToString();
  EXPECT_EQ(Count("txmq_outbox"), 0);
  Sql(conn_.get(), "BEGIN");
  s = outbox.Add(conn_.get(), {.topic = "bad topic!", .body = "x"});
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s.ToString();
  s = outbox.Add(conn_.get(), {.topic = "orders", .body = "x", .properties = {{"txmq.tx", "t"}}});
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << "reserved property: " << s.ToString();
  Sql(conn_.get(), "ROLLBACK");
}

TEST_F(PgOutbox, TablesAreCreatedOnceAndNewerTablesAreRefusedNamingTheVersion) {
  Status first = pg::Outbox::Migrate(conn_.get());
  ASSERT_TRUE(first.ok()) << first.ToString();
  ASSERT_TRUE(pg::Outbox::Migrate(conn_.get()).ok()) << "a second migration changes nothing";
  auto r = pg::Exec(conn_.get(), "SELECT version FROM txmq_schema WHERE component = 'outbox'");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(pg::IntField(r->get(), 0, 0), 3);
  Sql(conn_.get(), "UPDATE txmq_schema SET version = 99 WHERE component = 'outbox'");
  pg::Outbox outbox(Opts());
  Status s = outbox.Start();
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition) << s.ToString();
  EXPECT_NE(s.message().find("version 99"), std::string::npos) << s.ToString();
}

// A database of txmq's outbox version 1 (before txmq_origin) with a
// pending row: the migration adds the origin table and keeps the row.
TEST_F(PgOutbox, AVersion1DatabaseMigratesForwardKeepingItsRows) {
  ASSERT_TRUE(pg::Outbox::Migrate(conn_.get()).ok());
  Sql(conn_.get(), "DROP TABLE txmq_origin");  // version 2's only step
  Sql(conn_.get(), "UPDATE txmq_schema SET version = 1 WHERE component = 'outbox'");
  Sql(conn_.get(), "INSERT INTO txmq_outbox (id, topic, payload) VALUES ('old', 'orders', '')");
  pg::Outbox outbox(Opts());
  ASSERT_TRUE(pg::Outbox::Migrate(conn_.get()).ok());
  auto r = pg::Exec(conn_.get(), "SELECT version FROM txmq_schema WHERE component = 'outbox'");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(pg::IntField(r->get(), 0, 0), 3);
  EXPECT_EQ(Count("txmq_origin"), 0);
  EXPECT_EQ(Count("txmq_outbox"), 1);
  PlaceOrder(outbox, conn_.get(), "after", "");
  EXPECT_EQ(Count("txmq_origin"), 1) << "Add records its origin once the table exists";
  EXPECT_EQ(Count("txmq_outbox"), 2);
}

// A database of outbox version 2 (full pages, Add's statement sent each
// time) with a claimed row: the migration gives the table room for
// heap-only claims and creates txmq_outbox_add, and keeps the row and its
// claim; the row is sent once its claim runs out, before the next of its
// key.
TEST_F(PgOutbox, AVersion2DatabaseMigratesForwardKeepingItsRowsAndClaims) {
  ASSERT_TRUE(pg::Outbox::Migrate(conn_.get()).ok());
  pg::Outbox writer(Opts());
  PlaceOrder(writer, conn_.get(), "old", "k");
  // Version 3's steps undone.
  Sql(conn_.get(), "ALTER TABLE txmq_outbox RESET (fillfactor)");
  Sql(conn_.get(), "DROP FUNCTION txmq_outbox_add");
  Sql(conn_.get(), "UPDATE txmq_schema SET version = 2 WHERE component = 'outbox'");
  auto claimed = pg::ClaimDue(conn_.get(), "old-relay", 500ms, 10, true);
  ASSERT_TRUE(claimed.ok() && claimed->size() == 1u);
  ASSERT_TRUE(pg::Outbox::Migrate(conn_.get()).ok());
  auto r =
      pg::Exec(conn_.get(),
               "SELECT (SELECT version FROM txmq_schema WHERE component = 'outbox'),"
               " array_to_string(reloptions, ',') FROM pg_class WHERE relname = 'txmq_outbox'");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(pg::IntField(r->get(), 0, 0), 3);
  EXPECT_EQ(pg::Field(r->get(), 0, 1), "fillfactor=50");
  auto row = pg::Exec(conn_.get(), "SELECT lease_owner, fence FROM txmq_outbox WHERE id = 'old'");
  ASSERT_TRUE(row.ok() && PQntuples(row->get()) == 1);
  EXPECT_EQ(pg::Field(row->get(), 0, 0), "old-relay");
  EXPECT_EQ(pg::IntField(row->get(), 0, 1), (*claimed)[0].fence);
  PlaceOrder(writer, conn_.get(), "new", "k");
  pg::Outbox outbox(Opts());
  ASSERT_TRUE(outbox.Start().ok());
  ASSERT_TRUE(outbox.Flush(10s).ok()) << outbox.stats().last_error;
  EXPECT_EQ(ByKey(Receive(2))["k"], (std::vector<std::string>{"old", "new"}));
}

// Transaction A takes seq 1 and commits after B took seq 2 and was sent:
// the relay claims by state, not by a high-water mark, so A's row goes too.
TEST_F(PgOutbox, ALateCommitOfAnEarlierSequenceIsNeverSkipped) {
  pg::Outbox outbox(Opts());
  ASSERT_TRUE(outbox.Start().ok());
  pg::Connection a = Connect();
  Sql(a.get(), "BEGIN");
  ASSERT_TRUE(outbox.Add(a.get(), {.topic = "orders", .key = "ka", .body = "a", .id = "a"}).ok());
  PlaceOrder(outbox, conn_.get(), "b", "kb");
  ASSERT_TRUE(WaitFor([&] { return outbox.stats().sent == 1; }));
  Sql(a.get(), "COMMIT");
  ASSERT_TRUE(outbox.Flush(10s).ok());
  auto got = Receive(2);
  std::set<std::string> ids;
  for (const auto& m : got) ids.insert(m.id);
  EXPECT_EQ(ids, (std::set<std::string>{"a", "b"}));
}

// B adds a row of key k while A's transaction, which added an earlier row
// of k, is open: B waits at Add until A commits, so k's rows arrive in
// commit order (without the key lock B commits first and k-2 overtakes).
TEST_F(PgOutbox, WritersOfOneKeyCommitOneAfterTheOtherAndArriveInThatOrder) {
  pg::Outbox outbox(Opts());
  ASSERT_TRUE(outbox.Start().ok());
  pg::Connection a = Connect();
  Sql(a.get(), "BEGIN");
  ASSERT_TRUE(outbox.Add(a.get(), {.topic = "orders", .key = "k", .body = "1", .id = "k-1"}).ok());
  std::atomic<bool> b_committed{false};
  std::thread b([&] {
    pg::Connection c = Connect();
    PlaceOrder(outbox, c.get(), "k-2", "k");
    b_committed = true;
  });
  std::this_thread::sleep_for(300ms);  // time for B to overtake, if it could
  const bool overtook = b_committed.load();
  Sql(a.get(), "COMMIT");
  b.join();
  EXPECT_FALSE(overtook) << "B committed a row of k while A's earlier row was uncommitted";
  ASSERT_TRUE(outbox.Flush(10s).ok());
  EXPECT_EQ(ByKey(Receive(2))["k"], (std::vector<std::string>{"k-1", "k-2"}));
}

TEST_F(PgOutbox, TwoRelaysOnOneDatabaseSendEveryRowOnceInKeyOrder) {
  auto o1 = Opts("relay-1"), o2 = Opts("relay-2");
  o1.max_in_flight = o2.max_in_flight = 4;
  pg::Outbox relay1(o1), relay2(o2);
  ASSERT_TRUE(relay1.Start().ok());
  ASSERT_TRUE(relay2.Start().ok());
  constexpr int kRows = 200, kKeys = 8;
  for (int i = 0; i < kRows; i += 10) {
    Sql(conn_.get(), "BEGIN");
    for (int j = i; j < i + 10; ++j) {
      const std::string id = "r-" + std::to_string(1000 + j);
      ASSERT_TRUE(
          relay1
              .Add(
                  conn_.get(),
                  {.topic = "orders", .key = "k" + std::to_string(j % kKeys), .body = id, .id = id})
              .ok());
    }
    Sql(conn_.get(), "COMMIT");
  }
  ASSERT_TRUE(relay1.Flush(30s).ok()) << relay1.stats().last_error;
  EXPECT_EQ(relay1.stats().sent + relay2.stats().sent, static_cast<uint64_t>(kRows));
  auto got = Receive(kRows);
  ASSERT_EQ(got.size(), static_cast<size_t>(kRows)) << "every row once";
  for (auto& [key, ids] : ByKey(got)) {
    EXPECT_TRUE(std::is_sorted(ids.begin(), ids.end())) << "key " << key << " out of order";
  }
}

// The claim's fence: relay "a" claimed the row and paused past its lease;
// relay "b" claimed it again. a's late "sent" changes nothing; b's does.
TEST_F(PgOutbox, ARelayPausedPastItsLeaseCannotUndoTheTakeover) {
  ASSERT_TRUE(pg::Outbox::Migrate(conn_.get()).ok());
  pg::Outbox outbox(Opts());  // Add only; not started
  Sql(conn_.get(), "BEGIN");
  ASSERT_TRUE(outbox.Add(conn_.get(), {.topic = "orders", .body = "x", .id = "row"}).ok());
  Sql(conn_.get(), "COMMIT");
  // a's claim must outlast the next statement even on a loaded machine,
  // and run out within the wait below.
  auto a = pg::ClaimDue(conn_.get(), "a", 1500ms, 10, true);
  ASSERT_TRUE(a.ok() && a->size() == 1u);
  auto none = pg::ClaimDue(conn_.get(), "b", 10s, 10, true);
  ASSERT_TRUE(none.ok() && none->empty()) << "claimed rows are not claimed twice";
  std::vector<pg::ClaimedRow> b;
  ASSERT_TRUE(WaitFor([&] {
    auto r = pg::ClaimDue(conn_.get(), "b", 10s, 10, true);
    if (r.ok()) b = *r;
    return !b.empty();
  }));
  EXPECT_GT(b[0].fence, (*a)[0].fence);
  auto late = pg::MarkFailed(conn_.get(), "row", (*a)[0].fence, true, 0ms, "late");
  ASSERT_TRUE(late.ok());
  EXPECT_FALSE(*late) << "a's late failure must not park b's claim";
  auto late_sent = pg::MarkSent(conn_.get(), "row", (*a)[0].fence);
  ASSERT_TRUE(late_sent.ok());
  EXPECT_FALSE(*late_sent);
  EXPECT_EQ(Count("txmq_outbox"), 1);
  auto sent = pg::MarkSent(conn_.get(), "row", b[0].fence);
  ASSERT_TRUE(sent.ok());
  EXPECT_TRUE(*sent);
  EXPECT_EQ(Count("txmq_outbox"), 0);
}

TEST_F(PgOutbox, ARefusedRowIsParkedHoldsItsKeyAndARequeueSendsBothInOrder) {
  broker_->Stop();
  options_.auto_create_topics = false;
  broker_ = testing::StartBroker(options_);
  ASSERT_NE(broker_, nullptr);
  testing::AdminClient admin(broker_->endpoint());
  ASSERT_TRUE(
      admin.Call([](wire::Envelope::Builder e) { e.initCreateTopic().setTopic("orders"); }).ok());
  pg::Outbox outbox(Opts());
  ASSERT_TRUE(outbox.Start().ok());
  Sql(conn_.get(), "BEGIN");
  ASSERT_TRUE(
      outbox.Add(conn_.get(), {.topic = "later", .key = "k", .body = "1", .id = "k-1"}).ok());
  Sql(conn_.get(), "COMMIT");
  ASSERT_TRUE(WaitFor([&] { return outbox.stats().parked == 1; }));
  PlaceOrder(outbox, conn_.get(), "k-2", "k");
  Status flush = outbox.Flush(5s);
  EXPECT_EQ(flush.code(), StatusCode::kFailedPrecondition) << flush.ToString();
  auto pending = pg::Outbox::List(conn_.get(), false);
  ASSERT_TRUE(pending.ok());
  ASSERT_EQ(pending->size(), 1u);
  EXPECT_EQ((*pending)[0].blocked_by, "k-1");
  auto parked = pg::Outbox::List(conn_.get(), true);
  ASSERT_TRUE(parked.ok() && parked->size() == 1u);
  EXPECT_NE((*parked)[0].last_error.find("NOT_FOUND"), std::string::npos)
      << (*parked)[0].last_error;
  EXPECT_EQ(pg::Outbox::Requeue(conn_.get(), "nope").code(), StatusCode::kNotFound);

  ASSERT_TRUE(
      admin.Call([](wire::Envelope::Builder e) { e.initCreateTopic().setTopic("later"); }).ok());
  ASSERT_TRUE(pg::Outbox::Requeue(conn_.get(), "k-1").ok());
  ASSERT_TRUE(outbox.Flush(10s).ok()) << outbox.stats().last_error;
  EXPECT_EQ(outbox.stats().parked, 0u);
  auto got = Receive(1);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].id, "k-2") << "k-1 went to topic 'later', after it";
}

// By default (NOTIFY serializes the adding transactions' commits) the row
// is found by polling and no notification is sent; notify_on_add sends one.
TEST_F(PgOutbox, ByDefaultRowsAreFoundByPollingAndOnlyNotifyOnAddNotifies) {
  pg::Connection listener = Connect();
  Sql(listener.get(), "LISTEN txmq_outbox");
  auto notified = [&] {
    PQconsumeInput(listener.get());
    bool any = false;
    while (PGnotify* n = PQnotifies(listener.get())) {
      any = true;
      PQfreemem(n);
    }
    return any;
  };
  pg::OutboxOptions quiet = Opts("quiet");
  ASSERT_FALSE(quiet.notify_on_add);
  quiet.poll_interval = 50ms;
  {
    pg::Outbox outbox(quiet);
    ASSERT_TRUE(outbox.Start().ok());
    PlaceOrder(outbox, conn_.get(), "order-1", "c1");
    ASSERT_TRUE(outbox.Flush(10s).ok()) << outbox.stats().last_error;
    EXPECT_FALSE(notified()) << "the default must not NOTIFY";
  }
  auto got = Receive(1);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].id, "order-1");

  pg::OutboxOptions loud_options = Opts("loud");
  loud_options.notify_on_add = true;
  pg::Outbox loud(loud_options);
  ASSERT_TRUE(loud.Start().ok());
  PlaceOrder(loud, conn_.get(), "order-2", "c2");
  EXPECT_TRUE(WaitFor([&] { return notified(); }, 5s)) << "notify_on_add wakes relays";
}

// With notify_on_add the commits' NOTIFY wakes the relay, and the rows
// that commit while it works are claimed when its outcomes wake it or,
// with nothing in flight, because NextDueIn finds them due: no row waits
// for the poll, here a minute away.
TEST_F(PgOutbox, WithNotifyOnAddNoRowWaitsForThePoll) {
  pg::OutboxOptions o = Opts("notified");
  o.notify_on_add = true;
  o.poll_interval = 60s;
  pg::Outbox outbox(o);
  ASSERT_TRUE(outbox.Start().ok());
  for (int burst = 0; burst < 10; ++burst) {
    for (int i = 0; i < 5; ++i) {
      PlaceOrder(outbox, conn_.get(), "order-" + std::to_string(burst * 5 + i),
                 "k" + std::to_string(i));
    }
    ASSERT_TRUE(WaitFor([&] { return Count("txmq_outbox") == 0; }, 5s))
        << Count("txmq_outbox") << " rows of burst " << burst << " wait for the poll";
  }
}

// A relay deletes the rows of a batch in one statement (its ids go in an
// array literal): any id stays one element, and a row whose claim moved on
// is left to the relay that holds it.
TEST_F(PgOutbox, SentRowsOfABatchAreDeletedInOneStatementWhateverTheirIds) {
  ASSERT_TRUE(pg::Outbox::Migrate(conn_.get()).ok());
  pg::Outbox writer(Opts());
  const std::vector<std::string> ids = {"a,b", "{c}", "d\"e", "f\\g", "h i", "NULL"};
  Sql(conn_.get(), "BEGIN");
  for (const std::string& id : ids) {
    ASSERT_TRUE(writer.Add(conn_.get(), {.topic = "orders", .body = id, .id = id}).ok()) << id;
  }
  Sql(conn_.get(), "COMMIT");
  auto claimed = pg::ClaimDue(conn_.get(), "r", 10s, 10, true);
  ASSERT_TRUE(claimed.ok()) << claimed.status().ToString();
  ASSERT_EQ(claimed->size(), ids.size());
  std::vector<std::pair<std::string, int64_t>> rows;
  for (const auto& c : *claimed) rows.emplace_back(c.message.id, c.fence);
  rows.back().second += 1;  // as if another relay had claimed it since
  auto deleted = pg::MarkSentMany(conn_.get(), rows);
  ASSERT_TRUE(deleted.ok()) << deleted.status().ToString();
  ASSERT_EQ(deleted->size(), rows.size());
  for (size_t i = 0; i + 1 < rows.size(); ++i) EXPECT_TRUE((*deleted)[i]) << rows[i].first;
  EXPECT_FALSE(deleted->back()) << "a moved fence deletes nothing";
  EXPECT_EQ(Count("txmq_outbox"), 1);
}

// Nothing is due in an empty table, and a claimed row, and the rows of
// its key behind it, are due when the claim runs out: a relay with nothing
// to claim sleeps until its poll, its outcomes or the lease end wake it,
// instead of asking the database again every millisecond.
TEST_F(PgOutbox, AClaimedRowAndTheRowsOfItsKeyBehindItAreDueWhenTheClaimRunsOut) {
  ASSERT_TRUE(pg::Outbox::Migrate(conn_.get()).ok());
  auto due = pg::NextDueIn(conn_.get());
  ASSERT_TRUE(due.ok()) << due.status().ToString();
  EXPECT_EQ(due->count(), -1) << "an empty table has nothing due (the relay sleeps its poll)";
  pg::Outbox writer(Opts());
  PlaceOrder(writer, conn_.get(), "k-1", "k");
  PlaceOrder(writer, conn_.get(), "k-2", "k");
  PlaceOrder(writer, conn_.get(), "u-1", "");
  due = pg::NextDueIn(conn_.get());
  ASSERT_TRUE(due.ok()) << due.status().ToString();
  EXPECT_EQ(due->count(), 0);
  auto claimed = pg::ClaimDue(conn_.get(), "r", 10s, 10, true);
  ASSERT_TRUE(claimed.ok() && claimed->size() == 2u) << "k-1 and u-1; k-2 waits behind k-1";
  due = pg::NextDueIn(conn_.get());
  ASSERT_TRUE(due.ok()) << due.status().ToString();
  EXPECT_GT(*due, 9s) << "nothing is due before the claim runs out";
  EXPECT_LE(*due, 10s);
  const int64_t k1_fence =
      (*claimed)[0].message.id == "k-1" ? (*claimed)[0].fence : (*claimed)[1].fence;
  auto sent = pg::MarkSent(conn_.get(), "k-1", k1_fence);
  ASSERT_TRUE(sent.ok() && *sent);
  due = pg::NextDueIn(conn_.get());
  ASSERT_TRUE(due.ok()) << due.status().ToString();
  EXPECT_EQ(due->count(), 0) << "k-2 is due once k-1 is gone";
}

}  // namespace
}  // namespace txmq
