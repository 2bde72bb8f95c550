#include "producer/src/sqlite/sqlite_db.h"

#include "producer/src/sweep_throttle.h"

namespace txmq::sqlite {

namespace {

struct StatementCloser {
  void operator()(sqlite3_stmt* s) const { sqlite3_finalize(s); }
};
using StatementPtr = std::unique_ptr<sqlite3_stmt, StatementCloser>;

Status FromCode(sqlite3* db, int rc, std::string_view sql) {
  // The first words of the statement say which one failed, without its data.
  std::string what(sql.substr(0, std::min<size_t>(sql.size(), 48)));
  for (char& c : what) {
    if (c == '\n') c = ' ';
  }
  const std::string message = std::string("SQLite ") + sqlite3_errstr(rc) + " in '" + what +
                              "...' on '" + FileName(db) + "': " + sqlite3_errmsg(db);
  switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      // Another connection holds the database's write lock (a long local
      // transaction, a relay's claim); the same call may pass in a moment.
      return Status::Timeout(message +
                             " (the database stayed locked for longer than busy_timeout; "
                             "retryable)");
    case SQLITE_CONSTRAINT:
      return Status::Conflict(message);
    case SQLITE_CANTOPEN:
    case SQLITE_IOERR:
    case SQLITE_FULL:
      return Status::Unavailable(message);
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return Status::Corruption(message);
    default:
      return Status::Internal(message);
  }
}

int Bind(sqlite3_stmt* stmt, int index, const Value& p) {
  if (std::holds_alternative<int64_t>(p.v)) {
    return sqlite3_bind_int64(stmt, index, std::get<int64_t>(p.v));
  }
  if (std::holds_alternative<std::string>(p.v)) {
    const std::string& s = std::get<std::string>(p.v);
    return p.blob ? sqlite3_bind_blob64(stmt, index, s.data(), s.size(), SQLITE_TRANSIENT)
                  : sqlite3_bind_text64(stmt, index, s.data(), s.size(), SQLITE_TRANSIENT,
                                        SQLITE_UTF8);
  }
  return sqlite3_bind_null(stmt, index);
}

Value Column(sqlite3_stmt* stmt, int i) {
  switch (sqlite3_column_type(stmt, i)) {
    case SQLITE_INTEGER:
    case SQLITE_FLOAT:
      return Value::Int(sqlite3_column_int64(stmt, i));
    case SQLITE_TEXT:
    case SQLITE_BLOB: {
      const bool blob = sqlite3_column_type(stmt, i) == SQLITE_BLOB;
      const void* p = blob ? sqlite3_column_blob(stmt, i) : sqlite3_column_text(stmt, i);
      std::string bytes(static_cast<const char*>(p),
                        static_cast<size_t>(sqlite3_column_bytes(stmt, i)));
      return blob ? Value::Blob(std::move(bytes)) : Value::Text(std::move(bytes));
    }
    default:
      return {};
  }
}

}  // namespace

Result<Rows> Exec(sqlite3* db, std::string_view sql, const std::vector<Value>& params) {
  sqlite3_stmt* raw = nullptr;
  int rc = sqlite3_prepare_v2(db, sql.data(), static_cast<int>(sql.size()), &raw, nullptr);
  StatementPtr stmt(raw);
  if (rc != SQLITE_OK) return FromCode(db, rc, sql);
  for (size_t i = 0; i < params.size(); ++i) {
    if ((rc = Bind(stmt.get(), static_cast<int>(i + 1), params[i])) != SQLITE_OK) {
      return FromCode(db, rc, sql);
    }
  }
  Rows out;
  while ((rc = sqlite3_step(stmt.get())) == SQLITE_ROW) {
    Row row;
    for (int i = 0; i < sqlite3_column_count(stmt.get()); ++i) row.push_back(Column(stmt.get(), i));
    out.rows.push_back(std::move(row));
  }
  if (rc != SQLITE_DONE) return FromCode(db, rc, sql);
  out.changes = sqlite3_changes64(db);
  return out;
}

void RollbackIfOpen(sqlite3* db) {
  if (InTransaction(db)) (void)Exec(db, "ROLLBACK");
}

Result<Database> Database::Open(const std::string& path, std::chrono::milliseconds busy_timeout,
                                bool create) {
  sqlite3* raw = nullptr;
  const int flags = SQLITE_OPEN_READWRITE | (create ? SQLITE_OPEN_CREATE : 0) |
                    SQLITE_OPEN_NOMUTEX;  // one thread at a time (the class's rule)
  const int rc = sqlite3_open_v2(path.c_str(), &raw, flags, nullptr);
  Database d;
  d.db_.reset(raw);
  if (rc != SQLITE_OK) {
    return Status::Unavailable("cannot open SQLite database '" + path +
                               "': " + (raw ? sqlite3_errmsg(raw) : sqlite3_errstr(rc)));
  }
  sqlite3_busy_timeout(raw, static_cast<int>(busy_timeout.count()));
  sqlite3_extended_result_codes(raw, 1);
  // WAL lets readers (txmqctl, Flush) run beside the one writer, and a
  // commit costs one fsync of the log. Switching needs no other connection
  // inside a transaction; when it cannot switch now the file keeps its
  // mode, which is only slower.
  (void)Exec(raw, "PRAGMA journal_mode=WAL");
  (void)Exec(raw, "PRAGMA synchronous=NORMAL");
  return d;
}

Result<Database> DatabasePool::Take() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!idle_.empty()) {
      Database d = std::move(idle_.back());
      idle_.pop_back();
      return d;
    }
  }
  return Database::Open(path_, busy_timeout_);
}

void DatabasePool::Give(Database db) {
  if (!db || InTransaction(db.get())) return;
  std::lock_guard<std::mutex> lock(mu_);
  if (static_cast<int>(idle_.size()) < max_idle_) idle_.push_back(std::move(db));
}

Result<int64_t> DeleteOlderThan(sqlite3* db, std::string_view table, std::string_view time_column,
                                std::chrono::milliseconds horizon, const std::string& group,
                                std::string_view unless, bool* more) {
  const std::string t(table);
  std::vector<Value> params = {Value::Int(horizon.count())};
  std::string where = std::string(time_column) + " < " + kNowMs + " - ?1";
  if (!group.empty()) {
    where += " AND group_name = ?2";
    params.push_back(Value::Text(group));
  }
  if (!unless.empty()) where += " AND NOT (" + std::string(unless) + ")";
  const std::string statement = "DELETE FROM " + t + " WHERE rowid IN (SELECT rowid FROM " + t +
                                " WHERE " + where + " LIMIT " +
                                std::to_string(producer::kSweepBatchRows) + ")";
  return producer::DeleteInBatches(
      [&]() -> Result<int64_t> {
        auto r = Exec(db, statement, params);
        if (!r.ok()) return r.status();
        return static_cast<int64_t>(r->changes);
      },
      more);
}

std::string FileName(sqlite3* db) {
  const char* f = sqlite3_db_filename(db, "main");
  return f ? f : "";
}

}  // namespace txmq::sqlite
