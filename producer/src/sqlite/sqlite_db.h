// The little of the SQLite C API txmq's SQLite tables use: a database
// handle that closes itself, and parameterized statements whose failure is
// a Status naming SQLite's error.
//
// SQLITE_BUSY (another connection kept the database locked for longer than
// the connection's busy_timeout) is TIMEOUT: retryable, and the message
// says so. A constraint violation is CONFLICT.
//
// Thread safety: a Database belongs to one thread at a time; Exec may be
// called on any handle, including the caller's own, by the thread that
// owns it.
#pragma once

#include <sqlite3.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "txmq/status.h"

namespace txmq::sqlite {

// One statement parameter or result column: NULL, integer, text or blob.
struct Value {
  static Value Int(int64_t v) { return {v, false}; }
  static Value Text(std::string v) { return {std::move(v), false}; }
  static Value Blob(std::string v) { return {std::move(v), true}; }

  std::variant<std::monostate, int64_t, std::string> v;
  bool blob = false;

  int64_t AsInt() const { return std::holds_alternative<int64_t>(v) ? std::get<int64_t>(v) : 0; }
  const std::string& AsText() const {
    static const std::string kEmpty;
    return std::holds_alternative<std::string>(v) ? std::get<std::string>(v) : kEmpty;
  }
};

using Row = std::vector<Value>;

struct Rows {
  std::vector<Row> rows;
  int64_t changes = 0;  // rows written by the statement (INSERT/UPDATE/DELETE)
};

// Runs one statement, binding `params` to ?1, ?2...; all its result rows.
Result<Rows> Exec(sqlite3* db, std::string_view sql, const std::vector<Value>& params = {});

// The database's clock in milliseconds since the epoch, as SQL: every
// process on one database file runs on one machine (SQLite's rule for a
// shared file), so all of them read the same clock.
inline constexpr const char* kNowMs =
    "CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER)";

// Whether `db` has a transaction open (the caller's BEGIN).
inline bool InTransaction(sqlite3* db) { return sqlite3_get_autocommit(db) == 0; }

// Ends the open transaction, if any, with ROLLBACK.
void RollbackIfOpen(sqlite3* db);

class Database {
 public:
  // Opens (creating when `create`) the file at `path` with `busy_timeout`,
  // WAL journal and synchronous=NORMAL unless the file already chose.
  static Result<Database> Open(const std::string& path, std::chrono::milliseconds busy_timeout,
                               bool create = true);
  Database() = default;
  sqlite3* get() const { return db_.get(); }
  explicit operator bool() const { return db_ != nullptr; }

 private:
  struct Closer {
    void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
  };
  std::unique_ptr<sqlite3, Closer> db_;
};

// Idle handles of one database file, for calls that run on many threads
// (inbox handlers, check-backs). Thread-safe.
class DatabasePool {
 public:
  DatabasePool(std::string path, std::chrono::milliseconds busy_timeout, int max_idle)
      : path_(std::move(path)), busy_timeout_(busy_timeout), max_idle_(max_idle) {}
  Result<Database> Take();
  // Keeps `db` for the next Take unless a transaction is open on it or
  // `max_idle` are kept already.
  void Give(Database db);

 private:
  const std::string path_;
  const std::chrono::milliseconds busy_timeout_;
  const int max_idle_;
  std::mutex mu_;
  std::vector<Database> idle_;  // guarded by mu_
};

// Retention of txmq's record tables, as pg::DeleteOlderThan (whose
// comment says the rest); `time_column` is in ms since the epoch.
Result<int64_t> DeleteOlderThan(sqlite3* db, std::string_view table, std::string_view time_column,
                                std::chrono::milliseconds horizon, const std::string& group = "",
                                std::string_view unless = "", bool* more = nullptr);

// The file name of `db`'s main database, for logs and errors.
std::string FileName(sqlite3* db);

}  // namespace txmq::sqlite
