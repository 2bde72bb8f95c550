// Check-back answered from transaction records in a real PostgreSQL,
// through a real broker: a committed local transaction is answered COMMIT,
// one that never committed ROLLBACK (and a late commit then fails), one
// still running UNKNOWN after a bounded wait, never ROLLBACK.
#include <gtest/gtest.h>
#include <libpq-fe.h>

#include <atomic>
#include <thread>

#include "tests/sql/pg_fixture.h"
#include "txmq/pg/transactions.h"
#include "txmq/properties.h"
#include "txmq/transaction_producer.h"

namespace txmq {
namespace {

using namespace std::chrono_literals;
using testing::WaitFor;

class PgTransactions : public testing::PgTest {
 protected:
  void SetUp() override {
    testing::PgTest::SetUp();
    auto records = pg::TransactionRecords::Open({.conninfo = conninfo_, .lock_wait = 300ms});
    ASSERT_TRUE(records.ok()) << records.status().ToString();
    records_ = std::move(*records);
  }

  std::unique_ptr<pg::TransactionRecords> records_;
};

// The local transaction commits but its outcome never reaches the broker
// (it says UNKNOWN): the broker's check-back is answered COMMIT from the
// record, and the message is delivered.
TEST_F(PgTransactions, ACommittedLocalTransactionIsAnsweredCommitByCheckBack) {
  TransactionProducer producer({.broker = broker_->endpoint(), .group = "orders"},
                               records_->Checker());
  ASSERT_TRUE(producer.Start().ok());
  pg::Connection conn = Connect();
  auto r = producer.SendInTransaction({.topic = "orders", .key = "o-1", .body = "order-1"},
                                      [&](const Message& m) {
                                        Sql(conn.get(), "BEGIN");
                                        Sql(conn.get(), "INSERT INTO orders VALUES ('order-1', 1)");
                                        EXPECT_TRUE(records_->RecordCommit(conn.get(), m).ok());
                                        Sql(conn.get(), "COMMIT");
                                        return TxState::kUnknown;  // as if the end were lost
                                      });
  ASSERT_TRUE(r.ok()) << r.status.ToString();
  auto got = Receive(1);
  ASSERT_EQ(got.size(), 1u) << "check-back answered COMMIT";
  EXPECT_EQ(got[0].body, "order-1");
}

// The local transaction never recorded a commit: the check writes the
// tombstone and answers ROLLBACK; the message is never delivered, and the
// local transaction can no longer commit what was rolled back.
TEST_F(PgTransactions, NoRecordIsAnsweredRollbackAndALateCommitFails) {
  TransactionProducer producer({.broker = broker_->endpoint(), .group = "orders"},
                               records_->Checker());
  ASSERT_TRUE(producer.Start().ok());
  Message sent;
  auto r =
      producer.SendInTransaction({.topic = "orders", .body = "order-1"}, [&](const Message& m) {
        sent = m;
        return TxState::kUnknown;  // and then it stalled
      });
  ASSERT_TRUE(r.ok()) << r.status.ToString();
  const std::string tx = r.transaction_id;
  ASSERT_TRUE(WaitFor([&] {
    auto row =
        pg::Exec(conn_.get(), "SELECT state FROM txmq_tx WHERE tx_id = $1", {pg::Param::Text(tx)});
    return row.ok() && PQntuples(row->get()) == 1 && pg::Field(row->get(), 0, 0) == "R";
  })) << "the check wrote its tombstone";
  EXPECT_TRUE(Receive(0, 800ms).empty()) << "rolled back: never delivered";

  pg::Connection late = Connect();
  Sql(late.get(), "BEGIN");
  Sql(late.get(), "INSERT INTO orders VALUES ('order-1', 1)");
  Status s = records_->RecordCommit(late.get(), sent);
  EXPECT_EQ(s.code(), StatusCode::kConflict) << s.ToString();
  Sql(late.get(), "ROLLBACK");
  EXPECT_EQ(Count("orders"), 0);
}

// A check that meets the running local transaction's record waits at most
// lock_wait and answers UNKNOWN; once it commits, COMMIT.
TEST_F(PgTransactions, ARunningLocalTransactionIsUnknownNeverRollback) {
  pg::Connection local = Connect();
  Sql(local.get(), "BEGIN");
  ASSERT_TRUE(records_->RecordCommit(local.get(), InTransaction("tx-1")).ok());
  std::string why;
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(records_->Check(CheckOf("tx-1"), &why), TxState::kUnknown) << why;
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s) << "the wait is bounded";
  EXPECT_NE(why.find("still running"), std::string::npos) << why;
  Sql(local.get(), "COMMIT");
  EXPECT_EQ(records_->Check(CheckOf("tx-1"), &why), TxState::kCommit) << why;

  // Outside a transaction, or without a transaction id: refused.
  EXPECT_EQ(records_->RecordCommit(conn_.get(), InTransaction("tx-2")).code(),
            StatusCode::kFailedPrecondition);
  Sql(conn_.get(), "BEGIN");
  EXPECT_EQ(records_->RecordCommit(conn_.get(), Message{.topic = "orders"}).code(),
            StatusCode::kFailedPrecondition);
  Sql(conn_.get(), "ROLLBACK");
}

// Older than the horizon and without a record: the record may have been
// removed, so no tombstone and no ROLLBACK; an operator decides.
TEST_F(PgTransactions, AnOldTransactionWithoutARecordIsLeftToAnOperator) {
  CheckRequest old = CheckOf("tx-old");
  old.born_at = std::chrono::system_clock::now() - std::chrono::hours(24 * 8);
  std::string why;
  EXPECT_EQ(records_->Check(old, &why), TxState::kUnknown) << why;
  EXPECT_NE(why.find("horizon"), std::string::npos) << why;
  EXPECT_EQ(Count("txmq_tx"), 0) << "no tombstone written";
}

}  // namespace
}  // namespace txmq
