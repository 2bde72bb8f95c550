// pg::TransactionRecords (see txmq/pg/transactions.h). Checks run on the
// producer's checker threads, each on a pooled connection.
#include "txmq/pg/transactions.h"

#include "producer/src/pg/pg_connection.h"
#include "producer/src/pg/pg_schema.h"
#include "producer/src/sql/tx_records.h"
#include "protocol/src/log.h"
#include "protocol/src/util.h"
#include "txmq/properties.h"

namespace txmq::pg {

class TransactionRecords::Impl {
 public:
  explicit Impl(TransactionRecordOptions options)
      : options_(std::move(options)),
        log_(Logger("producer")),
        pool_(options_.conninfo, options_.pool_size) {}

  Status Open() {
    if (options_.lock_wait.count() <= 0 || options_.horizon.count() <= 0 ||
        options_.pool_size < 1) {
      return Status::InvalidArgument(
          "pg transaction records options: lock_wait and horizon must be positive, pool_size "
          "at least 1");
    }
    auto conn = pool_.Take();
    if (!conn.ok()) return conn.status();
    if (Status s = MigrateTransactions(conn->get()); !s.ok()) return s;
    pool_.Give(std::move(*conn));
    return Status::OK();
  }

  Status RecordCommit(PGconn* conn, const Message& message) {
    auto tx = sql::TransactionIdOf(message);
    if (!tx.ok()) return tx.status();
    if (PQtransactionStatus(conn) != PQTRANS_INTRANS) {
      return Status::FailedPrecondition(
          "RecordCommit runs inside the local transaction (BEGIN first, on the connection of "
          "the business rows); this connection is not in one");
    }
    auto r = Exec(conn, "INSERT INTO txmq_tx (tx_id, state) VALUES ($1, 'C')", {Param::Text(*tx)});
    if (r.ok()) return Status::OK();
    if (r.status().code() == StatusCode::kConflict) return sql::RolledBackByCheck(*tx);
    return r.status();
  }

  TxState Check(const CheckRequest& check, std::string* why) {
    std::string reason;
    const TxState state = Decide(check, &reason);
    if (why != nullptr) *why = reason;
    sql::LogCheck(*log_, check, state, reason);
    return state;
  }

  Result<int64_t> RemoveExpired() {
    auto conn = pool_.Take();
    if (!conn.ok()) return conn.status();
    auto n = producer::SweepAll([&](bool* more) { return Sweep(conn->get(), more); });
    pool_.Give(std::move(*conn));
    return n;
  }

 private:
  TxState Decide(const CheckRequest& check, std::string* why) {
    auto taken = pool_.Take();
    if (!taken.ok()) {
      *why = taken.status().ToString();
      return TxState::kUnknown;
    }
    Connection conn = std::move(*taken);
    const TxState state = DecideOn(conn.get(), check, why);
    MaybeSweep(conn.get());
    pool_.Give(std::move(conn));
    return state;
  }

  TxState DecideOn(PGconn* conn, const CheckRequest& check, std::string* why) {
    const std::string& tx = check.transaction_id;
    const bool beyond_horizon = sql::BeyondHorizon(check, options_.horizon);
    auto step = [&](std::string_view sql, std::vector<Param> params = {}) {
      auto r = Exec(conn, sql, std::move(params));
      if (!r.ok() && PQtransactionStatus(conn) != PQTRANS_IDLE) (void)Exec(conn, "ROLLBACK");
      return r;
    };
    if (auto r = step("BEGIN"); !r.ok()) return sql::DatabaseUnknown(r.status(), why);
    if (auto r = step("SET LOCAL lock_timeout = " + std::to_string(options_.lock_wait.count()));
        !r.ok()) {
      return sql::DatabaseUnknown(r.status(), why);
    }
    // A transaction this old may have had its record removed: never write
    // a tombstone for it; only read.
    if (!beyond_horizon) {
      auto tombstone = step(
          "INSERT INTO txmq_tx (tx_id, state) VALUES ($1, 'R') "
          "ON CONFLICT DO NOTHING",
          {Param::Text(tx)});
      if (!tombstone.ok()) {
        if (tombstone.status().code() == StatusCode::kTimeout) {
          *why = "its local transaction is still running (the record's lock was held for " +
                 FormatDurationMs(options_.lock_wait.count()) + ")";
          return TxState::kUnknown;
        }
        return sql::DatabaseUnknown(tombstone.status(), why);
      }
      if (RowsChanged(tombstone->get()) == 1) {
        if (auto c = step("COMMIT"); !c.ok()) return sql::DatabaseUnknown(c.status(), why);
        *why = "no commit record: rolled back, and a late local commit will fail";
        return TxState::kRollback;
      }
    }
    auto state = step("SELECT state FROM txmq_tx WHERE tx_id = $1", {Param::Text(tx)});
    if (!state.ok()) return sql::DatabaseUnknown(state.status(), why);
    (void)step("COMMIT");
    std::optional<std::string> recorded;
    if (PQntuples(state->get()) == 1) recorded = std::string(Field(state->get(), 0, 0));
    return sql::FromRecord(recorded, options_.horizon, why);
  }

  void MaybeSweep(PGconn* conn) {
    if (Status s = sweeps_.RunIfDue([&](bool* more) { return Sweep(conn, more); }); !s.ok()) {
      log_->warn("removing old records of txmq_tx failed: {}", s.ToString());
    }
  }

  Result<int64_t> Sweep(PGconn* conn, bool* more) {
    return DeleteOlderThan(conn, "txmq_tx", "recorded_at", options_.horizon, "", "", more);
  }

  const TransactionRecordOptions options_;
  std::shared_ptr<spdlog::logger> log_;
  SweepThrottle sweeps_;
  ConnectionPool pool_;
};

Result<std::unique_ptr<TransactionRecords>> TransactionRecords::Open(
    TransactionRecordOptions options) {
  auto impl = std::make_unique<Impl>(std::move(options));
  if (Status s = impl->Open(); !s.ok()) return s;
  return std::unique_ptr<TransactionRecords>(new TransactionRecords(std::move(impl)));
}

TransactionRecords::TransactionRecords(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
TransactionRecords::~TransactionRecords() = default;

Status TransactionRecords::RecordCommit(pg_conn* conn, const Message& message) {
  return impl_->RecordCommit(conn, message);
}

TxState TransactionRecords::Check(const CheckRequest& check, std::string* why) {
  return impl_->Check(check, why);
}

TransactionChecker TransactionRecords::Checker() {
  return [impl = impl_.get()](const CheckRequest& check) { return impl->Check(check, nullptr); };
}

Result<int64_t> TransactionRecords::RemoveExpired() { return impl_->RemoveExpired(); }

}  // namespace txmq::pg
