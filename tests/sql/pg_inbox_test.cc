// The PostgreSQL inbox on a real PostgreSQL server: a redelivered message
// runs its handler once, two copies at once run it once (under READ
// COMMITTED and REPEATABLE READ), a handler that fails leaves neither its
// writes nor the record, and through a real broker a delivery whose ack
// was lost is acknowledged as a duplicate.
#include <gtest/gtest.h>
#include <libpq-fe.h>

#include <atomic>
#include <thread>

#include "tests/sql/pg_fixture.h"
#include "txmq/pg/inbox.h"
#include "txmq/pg/outbox.h"
#include "txmq/producer.h"

namespace txmq {
namespace {

using namespace std::chrono_literals;
using testing::WaitFor;

class PgInbox : public testing::PgTest {
 protected:
  std::unique_ptr<pg::Inbox> OpenInbox(bool repeatable_read = false) {
    auto inbox = pg::Inbox::Open(
        {.conninfo = conninfo_, .group = "billing", .repeatable_read = repeatable_read});
    EXPECT_TRUE(inbox.ok()) << inbox.status().ToString();
    return inbox.ok() ? std::move(*inbox) : nullptr;
  }

  // Inserts the order the message names, counting the runs.
  pg::SqlHandler RecordOrder(std::atomic<int>& runs,
                             std::chrono::milliseconds hold = std::chrono::milliseconds(0)) {
    return [&runs, hold](PGconn* conn, const Received& m) {
      ++runs;
      auto r = pg::Exec(conn, "INSERT INTO orders VALUES ($1, 1)", {pg::Param::Text(m.body)});
      if (!r.ok()) return ConsumeResult::RetryLater();
      std::this_thread::sleep_for(hold);  // a slow handler: the other copy arrives meanwhile
      return ConsumeResult::Success();
    };
  }
};

TEST_F(PgInbox, ARedeliveredMessageRunsTheHandlerOnce) {
  auto inbox = OpenInbox();
  ASSERT_NE(inbox, nullptr);
  std::atomic<int> runs{0};
  Handler handler = inbox->Idempotent(RecordOrder(runs));
  EXPECT_EQ(handler(Delivery("m-1", "order-1")).kind(), ConsumeResult::Kind::kSuccess);
  EXPECT_EQ(handler(Delivery("m-1", "order-1")).kind(), ConsumeResult::Kind::kSuccess)
      << "a duplicate is acknowledged";
  EXPECT_EQ(runs, 1);
  EXPECT_EQ(Count("orders"), 1);
  EXPECT_TRUE(*inbox->Processed("m-1"));
  EXPECT_FALSE(*inbox->Processed("m-2"));
}

class PgInboxIsolation : public PgInbox, public ::testing::WithParamInterface<bool> {};

TEST_P(PgInboxIsolation, TwoCopiesAtOnceRunTheHandlerOnce) {
  auto inbox = OpenInbox(GetParam());
  ASSERT_NE(inbox, nullptr);
  std::atomic<int> runs{0};
  Handler handler = inbox->Idempotent(RecordOrder(runs, 300ms));
  ConsumeResult::Kind first = ConsumeResult::Kind::kRetryLater;
  std::thread copy([&] { first = handler(Delivery("m-1", "order-1")).kind(); });
  ASSERT_TRUE(WaitFor([&] { return runs.load() == 1; }));  // the first copy is in its handler
  const ConsumeResult second = handler(Delivery("m-1", "order-1"));
  copy.join();
  EXPECT_EQ(first, ConsumeResult::Kind::kSuccess);
  EXPECT_EQ(second.kind(), ConsumeResult::Kind::kSuccess);
  EXPECT_EQ(runs, 1) << "the second copy waited on the first one's record, then saw it";
  EXPECT_EQ(Count("orders"), 1);
}

INSTANTIATE_TEST_SUITE_P(ReadCommittedAndRepeatableRead, PgInboxIsolation, ::testing::Bool(),
                         [](const auto& info) {
                           return info.param ? "RepeatableRead" : "ReadCommitted";
                         });

TEST_F(PgInbox, AFailedHandlerLeavesNeitherItsWritesNorTheRecord) {
  auto inbox = OpenInbox();
  ASSERT_NE(inbox, nullptr);
  std::atomic<int> runs{0};
  Handler failing = inbox->Idempotent([&](PGconn* conn, const Received& m) {
    ++runs;
    (void)pg::Exec(conn, "INSERT INTO orders VALUES ($1, 1)", {pg::Param::Text(m.body)});
    return ConsumeResult::RetryLater(5s);
  });
  const ConsumeResult r = failing(Delivery("m-1", "order-1"));
  EXPECT_EQ(r.kind(), ConsumeResult::Kind::kRetryLater);
  EXPECT_EQ(r.delay(), 5s) << "the handler's own delay is kept";
  EXPECT_EQ(Count("orders"), 0);
  EXPECT_FALSE(*inbox->Processed("m-1"));

  // A statement that fails inside the handler (a duplicate business key)
  // fails the transaction: retried later, nothing recorded.
  Sql(conn_.get(), "INSERT INTO orders VALUES ('order-2', 1)");
  Handler ignoring_errors = inbox->Idempotent([&](PGconn* conn, const Received& m) {
    (void)pg::Exec(conn, "INSERT INTO orders VALUES ($1, 1)", {pg::Param::Text(m.body)});
    return ConsumeResult::Success();
  });
  EXPECT_EQ(ignoring_errors(Delivery("m-2", "order-2")).kind(), ConsumeResult::Kind::kRetryLater);
  EXPECT_FALSE(*inbox->Processed("m-2"));

  // A handler that ends the inbox's transaction itself: the record went
  // with it (PostgreSQL's COMMIT outside a transaction only warns), so the
  // message is given back, not acknowledged.
  Handler ending = inbox->Idempotent([&](PGconn* conn, const Received&) {
    (void)pg::Exec(conn, "ROLLBACK");
    return ConsumeResult::Success();
  });
  EXPECT_EQ(ending(Delivery("m-3", "order-3")).kind(), ConsumeResult::Kind::kRetryLater);
  EXPECT_FALSE(*inbox->Processed("m-3"));

  // The next delivery of m-1 runs and commits.
  Handler working = inbox->Idempotent(RecordOrder(runs));
  EXPECT_EQ(working(Delivery("m-1", "order-1")).kind(), ConsumeResult::Kind::kSuccess);
  EXPECT_TRUE(*inbox->Processed("m-1"));
  EXPECT_EQ(Count("orders"), 2);
}

// Through a real broker: the first delivery commits its writes and then
// "loses" its ack (the handler says retry, as a consumer killed after its
// commit would leave it); the redelivery is acknowledged without running.
TEST_F(PgInbox, ARedeliveryAfterALostAckIsAcknowledgedWithoutRunning) {
  auto inbox = OpenInbox();
  ASSERT_NE(inbox, nullptr);
  std::atomic<int> runs{0};
  DeliverLosingTheFirstAck(inbox->Idempotent(RecordOrder(runs)));
  EXPECT_EQ(runs, 1);
  EXPECT_EQ(Count("orders"), 1);
}

// A business failure: the handler's writes are rolled back, the failure
// record and the compensation commit together, and the compensation
// reaches the original producer group's compensation topic through the
// inbox's outbox. A redelivery is then a duplicate.
TEST_F(PgInbox, ACompensationCommitsWithTheFailureRecordAndReachesTheProducer) {
  pg::Outbox outbox({.conninfo = conninfo_,
                     .producer = {.broker = broker_->endpoint(), .group = "billing"},
                     .poll_interval = 200ms});
  ASSERT_TRUE(outbox.Start().ok());
  auto inbox = pg::Inbox::Open({.conninfo = conninfo_, .group = "billing", .outbox = &outbox});
  ASSERT_TRUE(inbox.ok()) << inbox.status().ToString();
  std::atomic<int> runs{0};
  Handler declining = (*inbox)->Idempotent([&](PGconn* conn, const Received& m) {
    ++runs;
    (void)pg::Exec(conn, "INSERT INTO orders VALUES ($1, 1)", {pg::Param::Text(m.body)});
    return ConsumeResult::Compensate("card declined");
  });
  Received m = Delivery("m-1", "order-1");
  m.key = "order-1";
  m.properties["txmq.producer-group"] = "orders";
  EXPECT_EQ(declining(m).kind(), ConsumeResult::Kind::kSuccess);
  EXPECT_EQ(declining(m).kind(), ConsumeResult::Kind::kSuccess) << "a redelivery: duplicate";
  EXPECT_EQ(runs, 1);
  EXPECT_EQ(Count("orders"), 0) << "the handler's writes were rolled back";
  EXPECT_TRUE(*(*inbox)->Processed("m-1"));
  ASSERT_TRUE(outbox.Flush(10s).ok()) << outbox.stats().last_error;

  auto got = ReceiveCompensation("%COMP%orders");
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].body, "card declined");
  EXPECT_EQ(got[0].key, "order-1");
  EXPECT_EQ(got[0].properties.at("txmq.original-id"), "m-1");
  EXPECT_EQ(got[0].properties.at("txmq.consumer-group"), "billing");

  auto no_outbox = pg::Inbox::Open({.conninfo = conninfo_, .group = "other"});
  ASSERT_TRUE(no_outbox.ok());
  Handler nowhere = (*no_outbox)->Idempotent([](PGconn*, const Received&) {
    return ConsumeResult::Compensate("no");
  });
  EXPECT_EQ(nowhere(Delivery("m-2", "order-2")).kind(), ConsumeResult::Kind::kRetryLater)
      << "no outbox to send it: retried";
}

TEST_F(PgInbox, RecordsOlderThanTheHorizonAreRemoved) {
  auto inbox = pg::Inbox::Open({.conninfo = conninfo_, .group = "billing", .horizon = 200ms});
  ASSERT_TRUE(inbox.ok());
  std::atomic<int> runs{0};
  Handler handler = (*inbox)->Idempotent(RecordOrder(runs));
  ASSERT_EQ(handler(Delivery("m-1", "order-1")).kind(), ConsumeResult::Kind::kSuccess);
  EXPECT_EQ(*(*inbox)->RemoveExpired(), 0) << "younger than the horizon";
  ASSERT_TRUE(WaitFor([&] { return *(*inbox)->RemoveExpired() == 1; }));
  EXPECT_FALSE(*(*inbox)->Processed("m-1"));
  EXPECT_EQ(pg::Inbox::Open({.conninfo = conninfo_, .group = ""}).status().code(),
            StatusCode::kInvalidArgument);
}

// A sweep keeps up with a busy inbox: it removes every expired record,
// not one batch (a sweep a minute removing 1,000 records fell behind any
// inbox taking more than 17 messages a second, for ever).
TEST_F(PgInbox, ASweepRemovesEveryExpiredRecordNotOneBatch) {
  auto inbox = pg::Inbox::Open({.conninfo = conninfo_, .group = "billing", .horizon = 1h});
  ASSERT_TRUE(inbox.ok());
  Sql(conn_.get(),
      "INSERT INTO txmq_inbox (group_name, message_id, state, processed_at)"
      " SELECT 'billing', 'old-' || i, 'P', now() - interval '2 hours'"
      " FROM generate_series(1, 5000) AS i");
  EXPECT_EQ(*(*inbox)->RemoveExpired(), 5000);
  EXPECT_EQ(Count("txmq_inbox"), 0);
}

}  // namespace
}  // namespace txmq
