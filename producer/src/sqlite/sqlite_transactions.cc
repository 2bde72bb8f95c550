// sqlite::TransactionRecords (see txmq/sqlite/transactions.h). Checks run on
// the producer's checker threads, each on a pooled handle whose
// busy_timeout is the check's lock_wait.
#include "txmq/sqlite/transactions.h"

#include "producer/src/sql/tx_records.h"
#include "producer/src/sqlite/sqlite_db.h"
#include "producer/src/sqlite/sqlite_schema.h"
#include "producer/src/sweep_throttle.h"
#include "protocol/src/log.h"
#include "protocol/src/util.h"
#include "txmq/properties.h"

namespace txmq::sqlite {

class TransactionRecords::Impl {
 public:
  explicit Impl(TransactionRecordOptions options)
      : options_(std::move(options)),
        log_(Logger("producer")),
        pool_(options_.path, options_.lock_wait, options_.pool_size) {}

  Status Open() {
    if (options_.path.empty() || options_.lock_wait.count() <= 0 || options_.horizon.count() <= 0 ||
        options_.pool_size < 1) {
      return Status::InvalidArgument(
          "sqlite transaction records options: path must be set, lock_wait and horizon "
          "positive, pool_size at least 1");
    }
    auto db = pool_.Take();
    if (!db.ok()) return db.status();
    if (Status s = MigrateTransactions(db->get()); !s.ok()) return s;
    pool_.Give(std::move(*db));
    return Status::OK();
  }

  Status RecordCommit(sqlite3* db, const Message& message) {
    auto tx = sql::TransactionIdOf(message);
    if (!tx.ok()) return tx.status();
    if (!InTransaction(db)) {
      return Status::FailedPrecondition(
          "RecordCommit runs inside the local transaction (BEGIN IMMEDIATE first, on the handle "
          "of the business rows); this handle is not in one");
    }
    auto r = Exec(db, "INSERT INTO txmq_tx (tx_id, state) VALUES (?1, 'C')", {Value::Text(*tx)});
    if (r.ok()) return Status::OK();
    if (r.status().code() == StatusCode::kConflict) return sql::RolledBackByCheck(*tx);
    return r.status();
  }

  TxState Check(const CheckRequest& check, std::string* why) {
    std::string reason;
    TxState state = TxState::kUnknown;
    if (auto db = pool_.Take(); !db.ok()) {
      reason = db.status().ToString();
    } else {
      state = Decide(db->get(), check, &reason);
      RollbackIfOpen(db->get());
      MaybeSweep(db->get());
      pool_.Give(std::move(*db));
    }
    if (why != nullptr) *why = reason;
    sql::LogCheck(*log_, check, state, reason);
    return state;
  }

  Result<int64_t> RemoveExpired() {
    auto db = pool_.Take();
    if (!db.ok()) return db.status();
    auto n = producer::SweepAll([&](bool* more) { return Sweep(db->get(), more); });
    pool_.Give(std::move(*db));
    return n;
  }

 private:
  TxState Decide(sqlite3* db, const CheckRequest& check, std::string* why) {
    const std::string& tx = check.transaction_id;
    const bool beyond_horizon = sql::BeyondHorizon(check, options_.horizon);
    // A transaction this old may have had its record removed: never write
    // a tombstone for it; only read.
    if (!beyond_horizon) {
      if (auto b = Exec(db, "BEGIN IMMEDIATE"); !b.ok()) {
        if (b.status().code() == StatusCode::kTimeout) {
          *why = "a local transaction holds the database's write lock (waited " +
                 FormatDurationMs(options_.lock_wait.count()) + "); it may be this one";
          return TxState::kUnknown;
        }
        return sql::DatabaseUnknown(b.status(), why);
      }
      auto tombstone = Exec(db, "INSERT OR IGNORE INTO txmq_tx (tx_id, state) VALUES (?1, 'R')",
                            {Value::Text(tx)});
      if (!tombstone.ok()) return sql::DatabaseUnknown(tombstone.status(), why);
      if (tombstone->changes == 1) {
        if (auto c = Exec(db, "COMMIT"); !c.ok()) return sql::DatabaseUnknown(c.status(), why);
        *why = "no commit record: rolled back, and a late local commit will fail";
        return TxState::kRollback;
      }
    }
    auto state = Exec(db, "SELECT state FROM txmq_tx WHERE tx_id = ?1", {Value::Text(tx)});
    if (!state.ok()) return sql::DatabaseUnknown(state.status(), why);
    std::optional<std::string> recorded;
    if (!state->rows.empty()) recorded = state->rows[0][0].AsText();
    return sql::FromRecord(recorded, options_.horizon, why);
  }

  void MaybeSweep(sqlite3* db) {
    if (Status s = sweeps_.RunIfDue([&](bool* more) { return Sweep(db, more); }); !s.ok()) {
      log_->warn("removing old records of txmq_tx failed: {}", s.ToString());
    }
  }

  Result<int64_t> Sweep(sqlite3* db, bool* more) {
    return DeleteOlderThan(db, "txmq_tx", "recorded_at", options_.horizon, "", "", more);
  }

  const TransactionRecordOptions options_;
  std::shared_ptr<spdlog::logger> log_;
  producer::SweepThrottle sweeps_;
  DatabasePool pool_;
};

Result<std::unique_ptr<TransactionRecords>> TransactionRecords::Open(
    TransactionRecordOptions options) {
  auto impl = std::make_unique<Impl>(std::move(options));
  if (Status s = impl->Open(); !s.ok()) return s;
  return std::unique_ptr<TransactionRecords>(new TransactionRecords(std::move(impl)));
}

TransactionRecords::TransactionRecords(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
TransactionRecords::~TransactionRecords() = default;

Status TransactionRecords::RecordCommit(sqlite3* db, const Message& message) {
  return impl_->RecordCommit(db, message);
}

TxState TransactionRecords::Check(const CheckRequest& check, std::string* why) {
  return impl_->Check(check, why);
}

TransactionChecker TransactionRecords::Checker() {
  return [impl = impl_.get()](const CheckRequest& check) { return impl->Check(check, nullptr); };
}

Result<int64_t> TransactionRecords::RemoveExpired() { return impl_->RemoveExpired(); }

}  // namespace txmq::sqlite
