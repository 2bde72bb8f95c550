// Check-back answered from transaction records in a SQLite database file,
// through a real broker: a committed local transaction is answered COMMIT,
// one that never committed ROLLBACK (and a late commit then fails), one
// still holding the write lock UNKNOWN after a bounded wait, never
// ROLLBACK.
#include <gtest/gtest.h>

#include "tests/sql/sqlite_fixture.h"
#include "txmq/properties.h"
#include "txmq/sqlite/transactions.h"
#include "txmq/transaction_producer.h"

namespace txmq {
namespace {

using namespace std::chrono_literals;
using testing::WaitFor;

class SqliteTransactions : public testing::SqliteTest {
 protected:
  void SetUp() override {
    testing::SqliteTest::SetUp();
    if (HasFatalFailure()) return;
    auto records = sqlite::TransactionRecords::Open({.path = path_, .lock_wait = 300ms});
    ASSERT_TRUE(records.ok()) << records.status().ToString();
    records_ = std::move(*records);
  }

  std::string StateOf(const std::string& tx) {
    auto r = sqlite::Exec(db_.get(), "SELECT state FROM txmq_tx WHERE tx_id = ?1",
                          {sqlite::Value::Text(tx)});
    return r.ok() && !r->rows.empty() ? r->rows[0][0].AsText() : "";
  }

  std::unique_ptr<sqlite::TransactionRecords> records_;
};

TEST_F(SqliteTransactions, ACommittedLocalTransactionIsAnsweredCommitByCheckBack) {
  TransactionProducer producer({.broker = broker_->endpoint(), .group = "orders"},
                               records_->Checker());
  ASSERT_TRUE(producer.Start().ok());
  sqlite::Database local = Open();
  auto r = producer.SendInTransaction(
      {.topic = "orders", .key = "o-1", .body = "order-1"}, [&](const Message& m) {
        Sql(local.get(), "BEGIN IMMEDIATE");
        Sql(local.get(), "INSERT INTO orders VALUES ('order-1', 1)");
        EXPECT_TRUE(records_->RecordCommit(local.get(), m).ok());
        Sql(local.get(), "COMMIT");
        return TxState::kUnknown;  // as if the end were lost
      });
  ASSERT_TRUE(r.ok()) << r.status.ToString();
  auto got = Receive(1);
  ASSERT_EQ(got.size(), 1u) << "check-back answered COMMIT";
  EXPECT_EQ(got[0].body, "order-1");
}

TEST_F(SqliteTransactions, NoRecordIsAnsweredRollbackAndALateCommitFails) {
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
  ASSERT_TRUE(WaitFor([&] { return StateOf(r.transaction_id) == "R"; }))
      << "the check wrote its tombstone";
  EXPECT_TRUE(Receive(0, 800ms).empty()) << "rolled back: never delivered";

  Sql(db_.get(), "BEGIN IMMEDIATE");
  Sql(db_.get(), "INSERT INTO orders VALUES ('order-1', 1)");
  Status s = records_->RecordCommit(db_.get(), sent);
  EXPECT_EQ(s.code(), StatusCode::kConflict) << s.ToString();
  Sql(db_.get(), "ROLLBACK");
  EXPECT_EQ(Count("orders"), 0);
}

// While a local transaction holds the write lock (its record inserted, not
// committed), a check waits at most lock_wait and answers UNKNOWN; once it
// commits, COMMIT.
TEST_F(SqliteTransactions, ARunningLocalTransactionIsUnknownNeverRollback) {
  sqlite::Database local = Open();
  Sql(local.get(), "BEGIN IMMEDIATE");
  ASSERT_TRUE(records_->RecordCommit(local.get(), InTransaction("tx-1")).ok());
  std::string why;
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(records_->Check(CheckOf("tx-1"), &why), TxState::kUnknown) << why;
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s) << "the wait is bounded";
  EXPECT_NE(why.find("write lock"), std::string::npos) << why;
  Sql(local.get(), "COMMIT");
  EXPECT_EQ(records_->Check(CheckOf("tx-1"), &why), TxState::kCommit) << why;
  EXPECT_EQ(records_->Check(CheckOf("tx-3"), &why), TxState::kRollback) << why;
  EXPECT_EQ(records_->Check(CheckOf("tx-3"), &why), TxState::kRollback) << "asked again: " << why;

  EXPECT_EQ(records_->RecordCommit(db_.get(), InTransaction("tx-2")).code(),
            StatusCode::kFailedPrecondition);
  Sql(db_.get(), "BEGIN IMMEDIATE");
  EXPECT_EQ(records_->RecordCommit(db_.get(), Message{.topic = "orders"}).code(),
            StatusCode::kFailedPrecondition);
  Sql(db_.get(), "ROLLBACK");
}

TEST_F(SqliteTransactions, AnOldTransactionWithoutARecordIsLeftToAnOperator) {
  CheckRequest old = CheckOf("tx-old");
  old.born_at = std::chrono::system_clock::now() - std::chrono::hours(24 * 8);
  std::string why;
  EXPECT_EQ(records_->Check(old, &why), TxState::kUnknown) << why;
  EXPECT_NE(why.find("horizon"), std::string::npos) << why;
  EXPECT_EQ(Count("txmq_tx"), 0) << "no tombstone written";
}

}  // namespace
}  // namespace txmq
