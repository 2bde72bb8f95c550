// The original's transaction and its compensation at once on PostgreSQL,
// on two connections: exactly one of "the original committed and was
// undone" and "the original failed and nothing was undone" holds, never
// "committed and not undone". A third of the rounds add the outbox row
// first (the compensation then waits on its record), a third let the
// compensation finish first, the rest race the two.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "consumer/src/compensation_message.h"
#include "tests/sql/sql_backends.h"
#include "txmq/properties.h"

namespace txmq::testing {
namespace {

using namespace std::chrono_literals;

class PgUndoRace : public SqlBackendTest<PgBackend> {
 protected:
  static Received CompensationFor(const Message& original) {
    Received o;
    o.id = original.id;
    o.topic = original.topic;
    o.properties = {{property::kProducerGroup, "orders"}};
    auto c = consumer::MakeCompensation(o, "billing", "out of stock");
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    Received r;
    r.id = "c-" + original.id;
    r.topic = c->topic;
    r.body = c->body;
    r.properties = c->properties;
    return r;
  }

  // Sessions of this database waiting for a row lock.
  int64_t LockWaiters() {
    auto r = pg::Exec(conn_.get(),
                      "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                      " AND datname = current_database()");
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? pg::IntField(r->get(), 0, 0) : -1;
  }

  std::string OriginState(const std::string& id) {
    auto r = pg::Exec(conn_.get(), "SELECT state FROM txmq_origin WHERE message_id = $1",
                      {pg::Param::Text(id)});
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() && PQntuples(r->get()) == 1 ? std::string(pg::Field(r->get(), 0, 0)) : "";
  }
};

TEST_F(PgUndoRace, TheOriginalEitherCommitsAndIsUndoneOrFailsAndNothingIsUndone) {
  auto outbox = MakeOutbox();
  auto inbox = OpenInbox("orders-undo");
  ASSERT_NE(inbox, nullptr);
  std::atomic<int> undos{0};
  auto made = pg::CompensationHandler(*inbox, [&](PGconn* conn, const Compensation& c) {
    ++undos;
    auto r = pg::Exec(conn, "DELETE FROM orders WHERE id = $1", {pg::Param::Text(c.original_id)});
    return r.ok() ? ConsumeResult::Success() : ConsumeResult::RetryLater();
  });
  ASSERT_TRUE(made.ok()) << made.status().ToString();
  Handler compensate = std::move(*made);
  pg::Connection original = Connect();
  int committed_and_undone = 0, failed = 0;
  for (int round = 0; round < 24; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    const Message order{.topic = "orders", .body = "x", .id = "race-" + std::to_string(round)};
    const bool add_first = round % 3 == 0;
    const bool compensation_first = round % 3 == 1;
    Run(original.get(), "BEGIN");
    Run(original.get(), "INSERT INTO orders VALUES ($1, 1)", {order.id});
    Status added = add_first ? outbox->Add(original.get(), order) : Status::OK();
    ASSERT_TRUE(added.ok()) << added.ToString();
    const int undos_before = undos;
    std::atomic<bool> done{false};
    ConsumeResult::Kind kind = ConsumeResult::Kind::kRetryLater;
    std::thread compensation([&] {
      kind = compensate(CompensationFor(order)).kind();
      done = true;
    });
    if (add_first) {
      // The compensation's fence meets the uncommitted origin record.
      EXPECT_TRUE(WaitFor([&] { return LockWaiters() >= 1 || done; }));
      EXPECT_FALSE(done) << "the compensation decided while the original could still commit";
    } else if (compensation_first) {
      // The compensation fences the id before the original's Add: its
      // commit must fail. Deterministic, so both outcomes occur in every
      // run whatever the machine's speed.
      EXPECT_TRUE(WaitFor([&] { return done.load(); }));
      added = outbox->Add(original.get(), order);
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(round % 4));  // vary the race
      added = outbox->Add(original.get(), order);
    }
    auto end = pg::Exec(original.get(), added.ok() ? "COMMIT" : "ROLLBACK");
    ASSERT_TRUE(end.ok()) << end.status().ToString();
    compensation.join();
    EXPECT_EQ(kind, ConsumeResult::Kind::kSuccess);
    const bool committed = OriginState(order.id) == "C";
    const bool undone = undos - undos_before == 1;
    EXPECT_EQ(committed, undone) << "committed=" << committed << " undone=" << undone;
    EXPECT_EQ(committed, added.ok()) << added.ToString();
    if (!committed) {
      EXPECT_EQ(added.code(), StatusCode::kAborted) << added.ToString();
      EXPECT_EQ(OriginState(order.id), "F");
    }
    EXPECT_EQ(Count("orders"), 0) << "net effect zero either way";
    (committed ? committed_and_undone : failed)++;
  }
  EXPECT_GT(committed_and_undone, 0);
  EXPECT_GT(failed, 0);
  EXPECT_EQ(Count("txmq_outbox"), committed_and_undone);
}

}  // namespace
}  // namespace txmq::testing
