// txmq::sqlite::Outbox: the local message table in the service's own SQLite
// database. The outbox row is inserted by the service's own transaction,
// on its own sqlite3* handle, so it commits with the business rows or not
// at all; relays (one per process, any number of processes on one database
// file) then send it until the broker acknowledges it.
//
//   txmq::sqlite::Outbox outbox({.path = "orders.db",
//                                .producer = {.broker = url, .group = "orders"}});
//   outbox.Start();                           // migrates the txmq_ tables, starts the relay
//   sqlite3_exec(db, "BEGIN IMMEDIATE", ...);
//   sqlite3_exec(db, "INSERT INTO orders ...", ...);
//   outbox.Add(db, {.topic = "order-created", .key = "42", .body = row});
//   sqlite3_exec(db, "COMMIT", ...);          // the relay sends it from here on
//
// Guarantees as the PostgreSQL outbox (txmq/pg/outbox.h): sent with the row
// id as message id (a resend is stored once by the broker's dedup window),
// deleted only after the broker acknowledged it, a key's rows in commit
// order one at a time across all relays, a row refused for good parked.
//
// Use BEGIN IMMEDIATE for the business transaction: a deferred BEGIN that
// reads first and writes later can fail with SQLITE_BUSY at its first
// write when another process committed meanwhile, which no busy_timeout
// waits out. Use WAL mode (Start switches the file to it): readers then
// run beside the writer. Relays claim in a short IMMEDIATE transaction of
// their own with a lease and a fencing token (sqlite_outbox_table.h says
// why this keeps key order and skips no row). A database kept locked
// longer than `busy_timeout` makes calls fail with TIMEOUT (SQLITE_BUSY;
// retryable): the relay retries by itself, Add's caller rolls back and
// tries again.
//
// Thread safety: Start, Shutdown, Flush, stats may be called from any
// thread. Add runs on the caller's handle, by the thread that owns it. The
// relay is one library thread ("txmq-sqlite-rly") with its own handle.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "txmq/message.h"
#include "txmq/outbox.h"
#include "txmq/producer.h"
#include "txmq/status.h"

struct sqlite3;

namespace txmq::sqlite {

struct OutboxOptions {
  // The database file holding the txmq_ tables (the relay opens its own
  // handle; Add uses the caller's).
  std::string path{};
  // Broker, producer group and per-send timeout used by the relay.
  ProducerOptions producer{};
  // How long the relay's and Flush's statements wait for the database's
  // write lock before they fail with TIMEOUT.
  std::chrono::milliseconds busy_timeout{5000};
  // As txmq/pg/outbox.h.
  std::chrono::milliseconds lease{30000};
  std::chrono::milliseconds backoff_initial{100};
  std::chrono::milliseconds backoff_max{60000};
  int max_attempts = 0;
  std::chrono::milliseconds max_age{0};
  int max_in_flight = 256;
  bool hold_key_behind_parked = true;
  // SQLite has no NOTIFY: the relay looks this often for committed rows
  // (one indexed query), a tenth as long while its claims keep finding
  // rows, and at once after an Add in this process.
  std::chrono::milliseconds poll_interval{200};
  // How long txmq_origin remembers each message Add committed, after it was
  // sent: a compensation (OnCompensation, only_recorded) runs the undo only
  // while this record exists. At least as long as a compensation may take
  // to come back. A record is kept while its row is in the outbox, and a
  // row sent a minute or more after its Add (retried, parked and requeued)
  // starts its record's horizon again at the send. The relay removes older
  // records when it starts and a minute apart (sooner while it falls
  // behind), for at most 100 ms at a time.
  std::chrono::milliseconds record_horizon = std::chrono::hours(24 * 7);
  std::string instance{};
};

class Outbox {
 public:
  explicit Outbox(OutboxOptions options);
  ~Outbox();
  Outbox(const Outbox&) = delete;
  Outbox& operator=(const Outbox&) = delete;

  // Opens the file, creates or migrates the txmq_ outbox tables, starts the
  // relay. INVALID_ARGUMENT names a bad option; UNAVAILABLE when the file
  // cannot be opened; FAILED_PRECONDITION when its tables are newer than
  // this txmq.
  Status Start();
  // Stops claiming, waits for the sends in flight, records their outcomes
  // and gives back this relay's claims. Idempotent.
  void Shutdown();

  // Adds `message` inside the transaction open on `db` (the caller's
  // BEGIN IMMEDIATE). An empty id gets a UUIDv7. INVALID_ARGUMENT for a bad
  // topic or a reserved property; FAILED_PRECONDITION when `db` has no
  // transaction open; CONFLICT when a row with this id exists; ABORTED
  // when a compensation for this id came first and fenced it
  // (sqlite/compensation.h), or an earlier message had this id: roll back;
  // TIMEOUT when the database stayed locked (roll back and retry).
  Status Add(sqlite3* db, Message message);

  // Waits until no pending row is left. OK then; FAILED_PRECONDITION when
  // the rows left wait behind parked rows; TIMEOUT.
  Status Flush(std::chrono::milliseconds timeout);
  OutboxStats stats() const;

  // Creates or migrates the txmq_ outbox tables on `db` (outside a
  // transaction); Start does this.
  static Status Migrate(sqlite3* db);
  // Operator access on any handle, relays running or not.
  static Result<std::vector<OutboxRow>> List(sqlite3* db, bool parked);
  static Status Requeue(sqlite3* db, const std::string& id,
                        const std::string& operator_name = "(in-process call)");
  static Status Delete(sqlite3* db, const std::string& id,
                       const std::string& operator_name = "(in-process call)");

  class Impl;
  Impl& impl() { return *impl_; }

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace txmq::sqlite
