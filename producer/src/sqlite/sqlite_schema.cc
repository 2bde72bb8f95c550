#include "producer/src/sqlite/sqlite_schema.h"

#include <span>
#include <string>

#include "producer/src/sqlite/sqlite_db.h"
#include "protocol/src/log.h"

namespace txmq::sqlite {

namespace {

#define TXMQ_NOW "(CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER))"

constexpr const char* kOutboxV1[] = {
    "CREATE TABLE txmq_outbox ("
    " seq             INTEGER PRIMARY KEY AUTOINCREMENT,"
    " id              TEXT NOT NULL UNIQUE,"
    " topic           TEXT NOT NULL,"
    " msg_key         TEXT NOT NULL DEFAULT '',"
    " state           INTEGER NOT NULL DEFAULT 0,"
    " attempts        INTEGER NOT NULL DEFAULT 0,"
    " next_attempt_at INTEGER NOT NULL DEFAULT " TXMQ_NOW
    ","
    " last_error      TEXT NOT NULL DEFAULT '',"
    " created_at      INTEGER NOT NULL DEFAULT " TXMQ_NOW
    ","
    " lease_owner     TEXT NOT NULL DEFAULT '',"
    " lease_until     INTEGER,"
    " fence           INTEGER NOT NULL DEFAULT 0,"
    " payload         BLOB NOT NULL)",
    "CREATE INDEX txmq_outbox_by_state_seq ON txmq_outbox (state, seq)",
    "CREATE INDEX txmq_outbox_by_key_seq ON txmq_outbox (msg_key, seq)",
};

constexpr const char* kInboxV1[] = {
    "CREATE TABLE txmq_inbox (group_name TEXT NOT NULL, message_id TEXT NOT NULL,"
    " state TEXT NOT NULL DEFAULT 'P', note TEXT NOT NULL DEFAULT '',"
    " processed_at INTEGER NOT NULL DEFAULT " TXMQ_NOW
    ","
    " PRIMARY KEY (group_name, message_id))",
    "CREATE INDEX txmq_inbox_by_time ON txmq_inbox (processed_at)",
};

constexpr const char* kTransactionsV1[] = {
    "CREATE TABLE txmq_tx (tx_id TEXT PRIMARY KEY, state TEXT NOT NULL,"
    " recorded_at INTEGER NOT NULL DEFAULT " TXMQ_NOW ")",
    "CREATE INDEX txmq_tx_by_time ON txmq_tx (recorded_at)",
};

#undef TXMQ_NOW

struct Component {
  const char* name;
  int version;
  std::span<const char* const> v1;
};

Status Run(sqlite3* db, const Component& c) {
  if (auto r = Exec(db,
                    "CREATE TABLE IF NOT EXISTS txmq_schema (component TEXT PRIMARY KEY, "
                    "version INTEGER NOT NULL, migrated_at INTEGER NOT NULL)");
      !r.ok()) {
    return r.status();
  }
  auto current =
      Exec(db, "SELECT version FROM txmq_schema WHERE component = ?1", {Value::Text(c.name)});
  if (!current.ok()) return current.status();
  const int version = current->rows.empty() ? 0 : static_cast<int>(current->rows[0][0].AsInt());
  if (version > c.version) {
    return Status::FailedPrecondition(
        std::string("the database's txmq ") + c.name + " tables are version " +
        std::to_string(version) + "; this txmq knows versions up to " + std::to_string(c.version) +
        ": upgrade txmq (a newer txmq migrated this database)");
  }
  if (version == c.version) return Status::OK();
  for (const char* statement : c.v1) {
    if (auto r = Exec(db, statement); !r.ok()) return r.status();
  }
  if (auto r = Exec(db,
                    std::string("INSERT OR REPLACE INTO txmq_schema (component, version, "
                                "migrated_at) VALUES (?1, ?2, ") +
                        kNowMs + ")",
                    {Value::Text(c.name), Value::Int(c.version)});
      !r.ok()) {
    return r.status();
  }
  Logger(c.name)->info("created the txmq {} tables (version {}) in SQLite database '{}'", c.name,
                       c.version, FileName(db));
  return Status::OK();
}

Status Migrate(sqlite3* db, const Component& c) {
  if (InTransaction(db)) {
    return Status::FailedPrecondition(std::string("the txmq ") + c.name +
                                      " tables are migrated on a connection outside any "
                                      "transaction");
  }
  if (auto r = Exec(db, "BEGIN IMMEDIATE"); !r.ok()) return r.status();
  Status s = Run(db, c);
  if (auto r = Exec(db, s.ok() ? "COMMIT" : "ROLLBACK"); !r.ok() && s.ok()) s = r.status();
  RollbackIfOpen(db);
  return s;
}

}  // namespace

Status MigrateOutbox(sqlite3* db) {
  return Migrate(db, {"outbox", kOutboxSchemaVersion, kOutboxV1});
}

Status MigrateInbox(sqlite3* db) { return Migrate(db, {"inbox", kInboxSchemaVersion, kInboxV1}); }

Status MigrateTransactions(sqlite3* db) {
  return Migrate(db, {"transactions", kTransactionsSchemaVersion, kTransactionsV1});
}

}  // namespace txmq::sqlite
