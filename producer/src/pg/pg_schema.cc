#include "producer/src/pg/pg_schema.h"

#include <span>
#include <string>

#include "producer/src/pg/pg_connection.h"
#include "protocol/src/log.h"

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

// A component's tables: the statements of its version 1 (later versions
// will add a step each).
struct Component {
  const char* name;
  int version;
  std::span<const char* const> v1;
};

Status Run(PGconn* conn, const Component& c) {
  if (auto r = Exec(conn, std::string("SELECT pg_advisory_xact_lock(") + kMigrationLock + ")");
      !r.ok()) {
    return r.status();
  }
  if (auto r = Exec(conn,
                    "CREATE TABLE IF NOT EXISTS txmq_schema (component text PRIMARY KEY, "
                    "version integer NOT NULL, migrated_at timestamptz NOT NULL DEFAULT now())");
      !r.ok()) {
    return r.status();
  }
  auto current =
      Exec(conn, "SELECT version FROM txmq_schema WHERE component = $1", {Param::Text(c.name)});
  if (!current.ok()) return current.status();
  const int version =
      PQntuples(current->get()) == 0 ? 0 : static_cast<int>(IntField(current->get(), 0, 0));
  if (version > c.version) {
    return Status::FailedPrecondition(
        std::string("the database's txmq ") + c.name + " tables are version " +
        std::to_string(version) + "; this txmq knows versions up to " + std::to_string(c.version) +
        ": upgrade txmq (a newer txmq migrated this database)");
  }
  if (version == c.version) return Status::OK();
  for (const char* statement : c.v1) {
    if (auto r = Exec(conn, statement); !r.ok()) return r.status();
  }
  if (auto r = Exec(conn,
                    "INSERT INTO txmq_schema (component, version) VALUES ($2, $1) "
                    "ON CONFLICT (component) DO UPDATE SET version = $1, migrated_at = now()",
                    {Param::Int(c.version), Param::Text(c.name)});
      !r.ok()) {
    return r.status();
  }
  Logger(c.name)->info("created the txmq {} tables (version {}) in database '{}'", c.name,
                       c.version, PQdb(conn));
  return Status::OK();
}

Status Migrate(PGconn* conn, const Component& c) {
  if (PQtransactionStatus(conn) != PQTRANS_IDLE) {
    return Status::FailedPrecondition(std::string("the txmq ") + c.name +
                                      " tables are migrated on a connection outside any "
                                      "transaction");
  }
  if (auto r = Exec(conn, "BEGIN"); !r.ok()) return r.status();
  Status s = Run(conn, c);
  if (auto r = Exec(conn, s.ok() ? "COMMIT" : "ROLLBACK"); !r.ok() && s.ok()) s = r.status();
  return s;
}

}  // namespace

Status MigrateOutbox(PGconn* conn) {
  return Migrate(conn, {"outbox", kOutboxSchemaVersion, kOutboxV1});
}

Status MigrateTransactions(PGconn* conn) {
  return Migrate(conn, {"transactions", kTransactionsSchemaVersion, kTransactionsV1});
}

Status MigrateInbox(PGconn* conn) {
  return Migrate(conn, {"inbox", kInboxSchemaVersion, kInboxV1});
}

}  // namespace txmq::pg
