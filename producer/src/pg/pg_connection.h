// The little of libpq txmq's PostgreSQL tables use: a connection that
// closes itself, and parameterized statements whose failure is a Status
// naming the SQL state.
//
// Thread safety: a Connection belongs to one thread at a time (libpq's
// rule for a PGconn); Exec may be called on any connection, including the
// caller's own, by the thread that owns it.
#pragma once

#include <libpq-fe.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "producer/src/sweep_throttle.h"
#include "txmq/status.h"

namespace txmq::pg {

struct ResultDeleter {
  void operator()(PGresult* r) const { PQclear(r); }
};
using ResultPtr = std::unique_ptr<PGresult, ResultDeleter>;

// One statement parameter: text, or bytes (sent in binary, for bytea).
struct Param {
  static Param Text(std::string v) { return {std::move(v), false}; }
  static Param Bytes(std::string v) { return {std::move(v), true}; }
  static Param Int(int64_t v) { return {std::to_string(v), false}; }
  std::string value;
  bool binary = false;
};

// Runs `sql` ($1, $2, ... for `params`) and returns its result. Errors:
// UNAVAILABLE when the connection is broken, ABORTED for a serialization
// failure or deadlock (run the transaction again), CONFLICT for a unique
// violation, FAILED_PRECONDITION when the transaction is already failed,
// TIMEOUT when lock_timeout ran out, INTERNAL otherwise; each message carries the SQL state and the
// server's words.
Result<ResultPtr> Exec(PGconn* conn, std::string_view sql, const std::vector<Param>& params = {});

// The statements txmq runs again and again on a connection of its own
// (the relay's), prepared there on first use so the server parses and
// plans each once per connection, not once per call. Never for a caller's
// connection: txmq cannot know when that one is replaced or reset (or
// what a pooler in front of it does with prepared statements). Belongs
// with one connection: Clear() when it is replaced.
class PreparedStatements {
 public:
  // Exec of `sql`, prepared on `conn` the first time.
  Result<ResultPtr> Exec(PGconn* conn, const std::string& sql, const std::vector<Param>& params);
  void Clear() { names_.clear(); }

 private:
  std::unordered_map<std::string, std::string> names_;  // SQL text -> statement name
};

// Exec on `prepared`'s statements of `conn` when it is given, else Exec.
Result<ResultPtr> Exec(PGconn* conn, PreparedStatements* prepared, const std::string& sql,
                       const std::vector<Param>& params);

// Field (row, column) of a text-format result.
std::string_view Field(const PGresult* r, int row, int column);
int64_t IntField(const PGresult* r, int row, int column);
// A bytea field of a text-format result, decoded.
std::string BytesField(const PGresult* r, int row, int column);
// Rows a command changed (UPDATE, DELETE, INSERT).
int64_t RowsChanged(const PGresult* r);

class Connection {
 public:
  // Connects with a libpq connection string ("host=127.0.0.1 port=5432
  // dbname=orders user=svc" or a postgresql:// URL). UNAVAILABLE, with the
  // server's reason, when it cannot.
  static Result<Connection> Open(const std::string& conninfo);
  Connection() = default;
  Connection(Connection&& other) noexcept : conn_(std::move(other.conn_)) {}
  Connection& operator=(Connection&& other) noexcept {
    conn_ = std::move(other.conn_);
    return *this;
  }
  PGconn* get() const { return conn_.get(); }
  bool broken() const { return !conn_ || PQstatus(conn_.get()) != CONNECTION_OK; }

 private:
  struct Closer {
    void operator()(PGconn* c) const { PQfinish(c); }
  };
  std::unique_ptr<PGconn, Closer> conn_;
};

// Idle connections to one database, for calls that run on many threads
// (inbox handlers, check-backs). Thread-safe.
class ConnectionPool {
 public:
  ConnectionPool(std::string conninfo, int max_idle)
      : conninfo_(std::move(conninfo)), max_idle_(max_idle) {}
  // An idle connection, or a new one.
  Result<Connection> Take();
  // Keeps `conn` for the next Take unless it is broken, inside a
  // transaction, or `max_idle` are kept already.
  void Give(Connection conn);

 private:
  const std::string conninfo_;
  const int max_idle_;
  std::mutex mu_;
  std::vector<Connection> idle_;  // guarded by mu_
};

// Retention of txmq's record tables: deletes the rows of `table` whose
// `time_column` is older than `horizon` (and, when `group` is not empty,
// whose group_name is `group`; when `unless` is not empty, for which that
// SQL condition is false), in batches of kSweepBatchRows, until none is
// left or kSweepTimeBudget is spent (then *more is set); how many. Run at
// most once a minute per table (SweepThrottle), sooner when *more.
Result<int64_t> DeleteOlderThan(PGconn* conn, std::string_view table, std::string_view time_column,
                                std::chrono::milliseconds horizon, const std::string& group = "",
                                std::string_view unless = "", bool* more = nullptr);

using SweepThrottle = producer::SweepThrottle;

// "host=127.0.0.1 port=5432 dbname=orders" without "password=...", for
// logs and errors.
std::string Redacted(const std::string& conninfo);

}  // namespace txmq::pg
