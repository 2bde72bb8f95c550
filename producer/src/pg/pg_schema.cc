#include "producer/src/pg/pg_schema.h"

#include <iterator>
#include <string>

#include "producer/src/pg/pg_connection.h"
#include "producer/src/sql/schema.h"

namespace txmq::pg {

namespace {

// Any constant: txmq's migrations take it, so two of them never interleave.
constexpr char kMigrationLock[] = "7305710001";

// One statement each: parameterized execution takes one at a time.
constexpr const char* kOutboxV1[] = {
    R"sql(
CREATE TABLE txmq_outbox (
  id              text PRIMARY KEY,
  seq             bigserial NOT NULL,
  topic           text NOT NULL,
  msg_key         text NOT NULL DEFAULT '',
  state           smallint NOT NULL DEFAULT 0,
  attempts        integer NOT NULL DEFAULT 0,
  next_attempt_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  last_error      text NOT NULL DEFAULT '',
  created_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
  lease_owner     text NOT NULL DEFAULT '',
  lease_until     timestamptz,
  fence           bigint NOT NULL DEFAULT 0,
  payload         bytea NOT NULL
))sql",
    "CREATE INDEX txmq_outbox_by_state_seq ON txmq_outbox (state, seq)",
    "CREATE INDEX txmq_outbox_by_key_seq ON txmq_outbox (msg_key, seq)",
};

// Version 2: the committed and fenced originals a compensation asks about
// (sql/origin_check.h). The outbox's Add inserts 'C' with its row; a compensation
// that finds no record inserts 'F', which Add's insert then conflicts with.
constexpr const char* kOutboxV2[] = {
    "CREATE TABLE txmq_origin (message_id text PRIMARY KEY, state char(1) NOT NULL,"
    " note text NOT NULL DEFAULT '',"
    " recorded_at timestamptz NOT NULL DEFAULT clock_timestamp())",
    "CREATE INDEX txmq_origin_by_time ON txmq_origin (recorded_at)",
    // On an upgrade (not a new database, whose outbox row is written after
    // the steps), its migrated_at: since when every Add records its origin.
    "INSERT INTO txmq_schema (component, version) SELECT 'outbox.origins', 2"
    " WHERE EXISTS (SELECT 1 FROM txmq_schema WHERE component = 'outbox')",
};

// Version 3: room on every page of the outbox for the claim's new row
// version. A claim changes no indexed column, so with room on the page its
// UPDATE is a heap-only (HOT) update: no index entries, and the WAL record
// holds only the bytes that changed (a few dozen) instead of the whole 1
// KiB+ row; with full pages (the default fillfactor 100) each claim wrote
// the row anew plus an entry in each of the three indexes. Sent rows are
// deleted soon, so the table stays small; pages written before the
// upgrade keep their layout until they are reused.
//
// And Add's statements in a function: the caller's connection is the
// service's, where txmq prepares nothing, so Add's statement was parsed
// and planned at every call. PL/pgSQL keeps the plans of its statements
// for the session; the call itself is trivial to plan. The key's lock
// comes first, before the row takes its seq (pg_outbox_table.cc), and a
// unique violation (an id fenced or added before) fails the call as it
// failed the statement.
constexpr const char* kOutboxV3[] = {
    "ALTER TABLE txmq_outbox SET (fillfactor = 50)",
    R"sql(
CREATE OR REPLACE FUNCTION txmq_outbox_add(p_id text, p_topic text, p_key text, p_payload bytea)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  IF p_key <> '' THEN
    PERFORM pg_advisory_xact_lock(hashtextextended('txmq.outbox:' || p_key, 0));
  END IF;
  INSERT INTO txmq_outbox (id, topic, msg_key, payload) VALUES (p_id, p_topic, p_key, p_payload);
  INSERT INTO txmq_origin (message_id, state) VALUES (p_id, 'C');
END
$$)sql",
};

constexpr const char* kInboxV1[] = {
    "CREATE TABLE txmq_inbox (group_name text NOT NULL, message_id text NOT NULL,"
    " state char(1) NOT NULL DEFAULT 'P', note text NOT NULL DEFAULT '',"
    " processed_at timestamptz NOT NULL DEFAULT clock_timestamp(),"
    " PRIMARY KEY (group_name, message_id))",
    "CREATE INDEX txmq_inbox_by_time ON txmq_inbox (processed_at)",
};

constexpr const char* kTransactionsV1[] = {
    "CREATE TABLE txmq_tx (tx_id text PRIMARY KEY, state char(1) NOT NULL,"
    " recorded_at timestamptz NOT NULL DEFAULT clock_timestamp())",
    "CREATE INDEX txmq_tx_by_time ON txmq_tx (recorded_at)",
};

using sql::Component;
using sql::Step;

constexpr Step kOutboxSteps[] = {kOutboxV1, kOutboxV2, kOutboxV3};
constexpr Step kInboxSteps[] = {kInboxV1};
constexpr Step kTransactionsSteps[] = {kTransactionsV1};
static_assert(std::size(kOutboxSteps) == kOutboxSchemaVersion);
static_assert(std::size(kInboxSteps) == kInboxSchemaVersion);
static_assert(std::size(kTransactionsSteps) == kTransactionsSchemaVersion);

class PgSteps : public sql::SchemaSteps {
 public:
  explicit PgSteps(PGconn* conn) : conn_(conn) {}
  Status CreateSchemaTable() override {
    return Done(Exec(conn_,
                     "CREATE TABLE IF NOT EXISTS txmq_schema (component text PRIMARY KEY, "
                     "version integer NOT NULL, migrated_at timestamptz NOT NULL DEFAULT now())"));
  }
  Result<int> Version(const char* component) override {
    auto r = Exec(conn_, "SELECT version FROM txmq_schema WHERE component = $1",
                  {Param::Text(component)});
    if (!r.ok()) return r.status();
    return PQntuples(r->get()) == 0 ? 0 : static_cast<int>(IntField(r->get(), 0, 0));
  }
  Status Run(const char* statement) override { return Done(Exec(conn_, statement)); }
  Status SetVersion(const char* component, int version) override {
    return Done(Exec(conn_,
                     "INSERT INTO txmq_schema (component, version) VALUES ($2, $1) "
                     "ON CONFLICT (component) DO UPDATE SET version = $1, migrated_at = now()",
                     {Param::Int(version), Param::Text(component)}));
  }
  std::string where() const override { return std::string("database '") + PQdb(conn_) + "'"; }

 private:
  static Status Done(const Result<ResultPtr>& r) { return r.ok() ? Status::OK() : r.status(); }
  PGconn* conn_;
};

Status Run(PGconn* conn, const Component& c) {
  if (auto r = Exec(conn, std::string("SELECT pg_advisory_xact_lock(") + kMigrationLock + ")");
      !r.ok()) {
    return r.status();
  }
  PgSteps steps(conn);
  return sql::MigrateComponent(steps, c);
}

Status Migrate(PGconn* conn, const Component& c) {
  if (PQtransactionStatus(conn) != PQTRANS_IDLE) return sql::MigrationInsideTransaction(c);
  if (auto r = Exec(conn, "BEGIN"); !r.ok()) return r.status();
  Status s = Run(conn, c);
  if (auto r = Exec(conn, s.ok() ? "COMMIT" : "ROLLBACK"); !r.ok() && s.ok()) s = r.status();
  return s;
}

}  // namespace

Status MigrateOutbox(PGconn* conn) { return Migrate(conn, {"outbox", kOutboxSteps}); }

Status MigrateTransactions(PGconn* conn) {
  return Migrate(conn, {"transactions", kTransactionsSteps});
}

Status MigrateInbox(PGconn* conn) { return Migrate(conn, {"inbox", kInboxSteps}); }

}  // namespace txmq::pg
