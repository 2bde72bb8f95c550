#include "producer/src/sqlite/sqlite_schema.h"

#include <iterator>
#include <string>

#include "producer/src/sql/schema.h"
#include "producer/src/sqlite/sqlite_db.h"

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

// Version 2: committed and fenced originals (as pg_schema.cc).
constexpr const char* kOutboxV2[] = {
    "CREATE TABLE txmq_origin (message_id TEXT PRIMARY KEY, state TEXT NOT NULL,"
    " note TEXT NOT NULL DEFAULT '',"
    " recorded_at INTEGER NOT NULL DEFAULT " TXMQ_NOW ")",
    "CREATE INDEX txmq_origin_by_time ON txmq_origin (recorded_at)",
    // On an upgrade (not a new database, whose outbox row is written after
    // the steps), its migrated_at: since when every Add records its origin.
    "INSERT INTO txmq_schema (component, version, migrated_at)"
    " SELECT 'outbox.origins', 2, " TXMQ_NOW
    " WHERE EXISTS (SELECT 1 FROM txmq_schema WHERE component = 'outbox')",
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

using sql::Component;
using sql::Step;

constexpr Step kOutboxSteps[] = {kOutboxV1, kOutboxV2};
constexpr Step kInboxSteps[] = {kInboxV1};
constexpr Step kTransactionsSteps[] = {kTransactionsV1};
static_assert(std::size(kOutboxSteps) == kOutboxSchemaVersion);
static_assert(std::size(kInboxSteps) == kInboxSchemaVersion);
static_assert(std::size(kTransactionsSteps) == kTransactionsSchemaVersion);

class SqliteSteps : public sql::SchemaSteps {
 public:
  explicit SqliteSteps(sqlite3* db) : db_(db) {}
  Status CreateSchemaTable() override {
    return Done(Exec(db_,
                     "CREATE TABLE IF NOT EXISTS txmq_schema (component TEXT PRIMARY KEY, "
                     "version INTEGER NOT NULL, migrated_at INTEGER NOT NULL)"));
  }
  Result<int> Version(const char* component) override {
    auto r =
        Exec(db_, "SELECT version FROM txmq_schema WHERE component = ?1", {Value::Text(component)});
    if (!r.ok()) return r.status();
    return r->rows.empty() ? 0 : static_cast<int>(r->rows[0][0].AsInt());
  }
  Status Run(const char* statement) override { return Done(Exec(db_, statement)); }
  Status SetVersion(const char* component, int version) override {
    return Done(Exec(db_,
                     std::string("INSERT OR REPLACE INTO txmq_schema (component, version, "
                                 "migrated_at) VALUES (?1, ?2, ") +
                         kNowMs + ")",
                     {Value::Text(component), Value::Int(version)}));
  }
  std::string where() const override { return "SQLite database '" + FileName(db_) + "'"; }

 private:
  static Status Done(const Result<Rows>& r) { return r.ok() ? Status::OK() : r.status(); }
  sqlite3* db_;
};

Status Migrate(sqlite3* db, const Component& c) {
  if (InTransaction(db)) return sql::MigrationInsideTransaction(c);
  if (auto r = Exec(db, "BEGIN IMMEDIATE"); !r.ok()) return r.status();
  SqliteSteps steps(db);
  Status s = sql::MigrateComponent(steps, c);
  if (auto r = Exec(db, s.ok() ? "COMMIT" : "ROLLBACK"); !r.ok() && s.ok()) s = r.status();
  RollbackIfOpen(db);
  return s;
}

}  // namespace

Status MigrateOutbox(sqlite3* db) { return Migrate(db, {"outbox", kOutboxSteps}); }

Status MigrateInbox(sqlite3* db) { return Migrate(db, {"inbox", kInboxSteps}); }

Status MigrateTransactions(sqlite3* db) {
  return Migrate(db, {"transactions", kTransactionsSteps});
}

}  // namespace txmq::sqlite
