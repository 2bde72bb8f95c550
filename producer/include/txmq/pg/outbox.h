// txmq::pg::Outbox: the local message table in the service's own
// PostgreSQL database. The outbox row is inserted by the service's own
// transaction, on its own connection, so it commits with the business rows
// or not at all; relays (one per service instance, any number of them on
// one database) then send it until the broker acknowledges it.
//
//   txmq::pg::Outbox outbox({.conninfo = "host=127.0.0.1 dbname=orders",
//                            .producer = {.broker = url, .group = "orders"}});
//   outbox.Start();                           // migrates the txmq_ tables, starts the relay
//   PQexec(conn, "BEGIN");
//   PQexec(conn, "INSERT INTO orders ...");
//   outbox.Add(conn, {.topic = "order-created", .key = "42", .body = row});
//   PQexec(conn, "COMMIT");                   // the relay sends it from here on
//
// Guarantees (as the LevelDB outbox, txmq/outbox.h): a row is sent with its
// id as the message id, so a resend (a timeout, a crash, a relay whose lease
// ran out) is stored once by the broker's dedup window; a row is deleted
// only after the broker acknowledged it; rows of one key are sent in commit
// order, one at a time across all relays; a row refused for good is parked
// and, by default, holds its key's later rows until requeued or deleted.
//
// Concurrency: Add takes a transaction-scoped advisory lock of the row's
// key, so two transactions adding rows of one key commit one after the
// other (the second waits at its Add until the first commits or rolls
// back); rows without a key take no lock. Relays claim rows with FOR UPDATE
// SKIP LOCKED and a lease, and write their outcome under the claim's fence
// (pg_outbox_table.h), so a relay paused past its lease cannot undo the
// work of the relay that took over. Works under READ COMMITTED and
// REPEATABLE READ; under SERIALIZABLE a conflicting Add fails the
// transaction with ABORTED like any serialization failure.
//
// Thread safety: Start, Shutdown, Flush, stats may be called from any
// thread. Add runs on the caller's connection, by the thread that owns it.
// The relay is one library thread ("txmq-pg-relay") with its own
// connection.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "txmq/message.h"
#include "txmq/outbox.h"
#include "txmq/producer.h"
#include "txmq/status.h"

struct pg_conn;  // libpq's PGconn

namespace txmq::pg {

struct OutboxOptions {
  // libpq connection string of the database holding the txmq_ tables (the
  // relay's own connection; Add uses the caller's).
  std::string conninfo{};
  // Broker, producer group and per-send timeout used by the relay.
  ProducerOptions producer{};
  // How long a relay's claim of a row lasts; a relay that stops (or
  // pauses) longer leaves the row to another. Must exceed the producer's
  // send_timeout times its attempts.
  std::chrono::milliseconds lease{30000};
  // Backoff of one row: initial * 2^(attempts-1), with jitter, capped.
  std::chrono::milliseconds backoff_initial{100};
  std::chrono::milliseconds backoff_max{60000};
  // Park a row that keeps failing transiently after this many attempts
  // or this age; 0 = never.
  int max_attempts = 0;
  std::chrono::milliseconds max_age{0};
  // Most rows this relay has claimed and not yet settled.
  int max_in_flight = 256;
  // See OutboxOptions::hold_key_behind_parked in txmq/outbox.h.
  bool hold_key_behind_parked = true;
  // Relays look for rows this often: rows that were added, became due, or
  // whose claim ran out. A relay whose last claim was full looks again at
  // once, and one whose claims found rows within the last interval looks
  // again after a tenth of it, so this bounds the relay lag of a quiet
  // table only.
  std::chrono::milliseconds poll_interval{100};
  // How long txmq_origin remembers each message Add committed, after it was
  // sent: a compensation (OnCompensation, only_recorded) runs the undo only
  // while this record exists. At least as long as a compensation may take
  // to come back. A record is kept while its row is in the outbox, and a
  // row sent a minute or more after its Add (retried, parked and requeued)
  // starts its record's horizon again at the send. The relay removes older
  // records when it starts and a minute apart (sooner while it falls
  // behind), for at most 100 ms at a time.
  std::chrono::milliseconds record_horizon = std::chrono::hours(24 * 7);
  // true: a committed Add also wakes the relays at once (NOTIFY), for the
  // lowest lag on a quiet table. Off by default: PostgreSQL commits the
  // transactions that NOTIFY one at a time (a database-wide lock held
  // through the commit's WAL flush), which cost 16 concurrent writers five
  // sixths of their commits here (BENCHMARKS.md, "The PostgreSQL outbox").
  bool notify_on_add = false;
  // Names this relay's claims in the table (lease_owner); default: host,
  // pid and a random suffix.
  std::string instance{};
};

class Outbox {
 public:
  explicit Outbox(OutboxOptions options);
  // Shutdown().
  ~Outbox();
  Outbox(const Outbox&) = delete;
  Outbox& operator=(const Outbox&) = delete;

  // Connects, creates or migrates the txmq_ outbox tables, starts the relay.
  // INVALID_ARGUMENT names a bad option; UNAVAILABLE when the database
  // cannot be reached; FAILED_PRECONDITION when its tables are newer than
  // this txmq.
  Status Start();
  // Stops claiming, waits for the sends in flight (at most the producer's
  // send timeout), records their outcomes and gives back this relay's
  // claims. Rows stay in the table for the next relay. Idempotent.
  void Shutdown();

  // Adds `message` inside the transaction open on `conn` (the caller's
  // BEGIN). An empty id gets a UUIDv7. INVALID_ARGUMENT for a bad topic or
  // a reserved property (txmq/properties.h);
  // FAILED_PRECONDITION when `conn` is not inside a transaction; CONFLICT
  // when a row with this id exists; ABORTED when a compensation for this
  // id came first and fenced it (pg/compensation.h), or an earlier message
  // had this id; other errors fail the caller's transaction (PostgreSQL's
  // rule): roll it back.
  Status Add(pg_conn* conn, Message message);

  // Waits until no pending row is left (rows of every relay). OK then;
  // FAILED_PRECONDITION when the rows left wait behind parked rows; TIMEOUT.
  Status Flush(std::chrono::milliseconds timeout);
  // Counts of the whole table; sent and last_error of this relay.
  OutboxStats stats() const;

  // Creates or migrates the txmq_ outbox tables on `conn` (outside a
  // transaction); Start does this.
  static Status Migrate(pg_conn* conn);
  // Operator access on any connection, relays running or not.
  static Result<std::vector<OutboxRow>> List(pg_conn* conn, bool parked);
  static Status Requeue(pg_conn* conn, const std::string& id,
                        const std::string& operator_name = "(in-process call)");
  // Deletes a parked row.
  static Status Delete(pg_conn* conn, const std::string& id,
                       const std::string& operator_name = "(in-process call)");

  class Impl;
  Impl& impl() { return *impl_; }

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace txmq::pg
