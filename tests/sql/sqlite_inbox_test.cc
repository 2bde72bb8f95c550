// The SQLite inbox on a database file: a redelivered message runs its
// handler once, two copies at once (on two threads, two handles) run it
// once, a handler that fails leaves neither its writes nor the record,
// and through a real broker a delivery whose ack was lost is acknowledged
// as a duplicate; a compensation commits with its failure record.
#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <thread>

#include "tests/sql/sqlite_fixture.h"
#include "txmq/producer.h"
#include "txmq/sqlite/inbox.h"
#include "txmq/sqlite/outbox.h"

namespace txmq {
namespace {

using namespace std::chrono_literals;
using testing::WaitFor;

class SqliteInbox : public testing::SqliteTest {
 protected:
  std::unique_ptr<sqlite::Inbox> OpenInbox() {
    auto inbox = sqlite::Inbox::Open({.path = path_, .group = "billing"});
    EXPECT_TRUE(inbox.ok()) << inbox.status().ToString();
    return inbox.ok() ? std::move(*inbox) : nullptr;
  }

  // Inserts the order the message names, counting the runs.
  sqlite::SqlHandler RecordOrder(std::atomic<int>& runs,
                                 std::chrono::milliseconds hold = std::chrono::milliseconds(0)) {
    return [&runs, hold](sqlite3* db, const Received& m) {
      ++runs;
      auto r = sqlite::Exec(db, "INSERT INTO orders VALUES (?1, 1)", {sqlite::Value::Text(m.body)});
      if (!r.ok()) return ConsumeResult::RetryLater();
      std::this_thread::sleep_for(hold);  // a slow handler: the other copy arrives meanwhile
      return ConsumeResult::Success();
    };
  }
};

TEST_F(SqliteInbox, ARedeliveredMessageRunsTheHandlerOnce) {
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

TEST_F(SqliteInbox, TwoCopiesAtOnceRunTheHandlerOnce) {
  auto inbox = OpenInbox();
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
  EXPECT_EQ(runs, 1) << "the second copy waited for the first one's commit, then saw its record";
  EXPECT_EQ(Count("orders"), 1);
}

TEST_F(SqliteInbox, AFailedHandlerLeavesNeitherItsWritesNorTheRecord) {
  auto inbox = OpenInbox();
  ASSERT_NE(inbox, nullptr);
  std::atomic<int> runs{0};
  Handler failing = inbox->Idempotent([&](sqlite3* db, const Received& m) {
    ++runs;
    (void)sqlite::Exec(db, "INSERT INTO orders VALUES (?1, 1)", {sqlite::Value::Text(m.body)});
    return ConsumeResult::RetryLater(5s);
  });
  const ConsumeResult r = failing(Delivery("m-1", "order-1"));
  EXPECT_EQ(r.kind(), ConsumeResult::Kind::kRetryLater);
  EXPECT_EQ(r.delay(), 5s) << "the handler's own delay is kept";
  EXPECT_EQ(Count("orders"), 0);
  EXPECT_FALSE(*inbox->Processed("m-1"));

  Handler throwing = inbox->Idempotent([&](sqlite3* db, const Received& m) -> ConsumeResult {
    (void)sqlite::Exec(db, "INSERT INTO orders VALUES (?1, 1)", {sqlite::Value::Text(m.body)});
    throw std::runtime_error("boom");
  });
  EXPECT_EQ(throwing(Delivery("m-1", "order-1")).kind(), ConsumeResult::Kind::kRetryLater);
  EXPECT_EQ(Count("orders"), 0);

  // A handler that ends the inbox's transaction itself: the record went
  // with it, so the message is given back, not acknowledged.
  Handler committing = inbox->Idempotent([&](sqlite3* db, const Received&) {
    (void)sqlite::Exec(db, "ROLLBACK");
    return ConsumeResult::Success();
  });
  EXPECT_EQ(committing(Delivery("m-2", "order-2")).kind(), ConsumeResult::Kind::kRetryLater);
  EXPECT_FALSE(*inbox->Processed("m-2"));

  Handler working = inbox->Idempotent(RecordOrder(runs));
  EXPECT_EQ(working(Delivery("m-1", "order-1")).kind(), ConsumeResult::Kind::kSuccess);
  EXPECT_TRUE(*inbox->Processed("m-1"));
  EXPECT_EQ(Count("orders"), 1);
}

// Another connection holds the write lock longer than the inbox's
// busy_timeout: the message is given back (retry later), not lost and not
// recorded.
TEST_F(SqliteInbox, ABusyDatabaseGivesTheMessageBack) {
  auto inbox = sqlite::Inbox::Open({.path = path_, .group = "billing", .busy_timeout = 200ms});
  ASSERT_TRUE(inbox.ok()) << inbox.status().ToString();
  std::atomic<int> runs{0};
  Handler handler = (*inbox)->Idempotent(RecordOrder(runs));
  Sql(db_.get(), "BEGIN IMMEDIATE");
  EXPECT_EQ(handler(Delivery("m-1", "order-1")).kind(), ConsumeResult::Kind::kRetryLater);
  Sql(db_.get(), "COMMIT");
  EXPECT_EQ(runs, 0);
  EXPECT_EQ(handler(Delivery("m-1", "order-1")).kind(), ConsumeResult::Kind::kSuccess);
  EXPECT_EQ(runs, 1);
}

TEST_F(SqliteInbox, ARedeliveryAfterALostAckIsAcknowledgedWithoutRunning) {
  auto inbox = OpenInbox();
  ASSERT_NE(inbox, nullptr);
  std::atomic<int> runs{0};
  DeliverLosingTheFirstAck(inbox->Idempotent(RecordOrder(runs)));
  EXPECT_EQ(runs, 1);
  EXPECT_EQ(Count("orders"), 1);
}

TEST_F(SqliteInbox, ACompensationCommitsWithTheFailureRecordAndReachesTheProducer) {
  sqlite::Outbox outbox({.path = path_,
                         .producer = {.broker = broker_->endpoint(), .group = "billing"},
                         .poll_interval = 100ms});
  ASSERT_TRUE(outbox.Start().ok());
  auto inbox = sqlite::Inbox::Open({.path = path_, .group = "billing", .outbox = &outbox});
  ASSERT_TRUE(inbox.ok()) << inbox.status().ToString();
  std::atomic<int> runs{0};
  Handler declining = (*inbox)->Idempotent([&](sqlite3* db, const Received& m) {
    ++runs;
    (void)sqlite::Exec(db, "INSERT INTO orders VALUES (?1, 1)", {sqlite::Value::Text(m.body)});
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
  EXPECT_EQ(got[0].properties.at("txmq.original-id"), "m-1");
  EXPECT_EQ(got[0].properties.at("txmq.consumer-group"), "billing");

  auto no_outbox = sqlite::Inbox::Open({.path = path_, .group = "other"});
  ASSERT_TRUE(no_outbox.ok());
  Handler nowhere = (*no_outbox)->Idempotent([](sqlite3*, const Received&) {
    return ConsumeResult::Compensate("no");
  });
  EXPECT_EQ(nowhere(Delivery("m-2", "order-2")).kind(), ConsumeResult::Kind::kRetryLater)
      << "no outbox to send it: retried";
}

TEST_F(SqliteInbox, RecordsOlderThanTheHorizonAreRemoved) {
  auto inbox = sqlite::Inbox::Open({.path = path_, .group = "billing", .horizon = 200ms});
  ASSERT_TRUE(inbox.ok());
  std::atomic<int> runs{0};
  Handler handler = (*inbox)->Idempotent(RecordOrder(runs));
  ASSERT_EQ(handler(Delivery("m-1", "order-1")).kind(), ConsumeResult::Kind::kSuccess);
  EXPECT_EQ(*(*inbox)->RemoveExpired(), 0) << "younger than the horizon";
  ASSERT_TRUE(WaitFor([&] { return *(*inbox)->RemoveExpired() == 1; }));
  EXPECT_FALSE(*(*inbox)->Processed("m-1"));
  EXPECT_EQ(sqlite::Inbox::Open({.path = path_, .group = ""}).status().code(),
            StatusCode::kInvalidArgument);
}

// As PgInbox.ASweepRemovesEveryExpiredRecordNotOneBatch.
TEST_F(SqliteInbox, ASweepRemovesEveryExpiredRecordNotOneBatch) {
  auto inbox = sqlite::Inbox::Open({.path = path_, .group = "billing", .horizon = 1h});
  ASSERT_TRUE(inbox.ok());
  Sql(db_.get(),
      "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 5000)"
      " INSERT INTO txmq_inbox (group_name, message_id, state, processed_at)"
      " SELECT 'billing', 'old-' || i, 'P', 0 FROM n");
  EXPECT_EQ(*(*inbox)->RemoveExpired(), 5000);
  EXPECT_EQ(Count("txmq_inbox"), 0);
}

}  // namespace
}  // namespace txmq
