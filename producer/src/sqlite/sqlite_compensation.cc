// sqlite::OnCompensation (see txmq/sqlite/compensation.h): the shared
// rules of sql/compensation_run.h on SQLite statements.
#include "txmq/sqlite/compensation.h"

#include "producer/src/sql/compensation_run.h"
#include "producer/src/sqlite/sqlite_db.h"
#include "producer/src/sqlite/sqlite_schema.h"
#include "txmq/names.h"

namespace txmq::sqlite {

namespace {

// Run in the inbox's BEGIN IMMEDIATE transaction, which holds the write
// lock: no original can commit between these statements.
class SqliteOriginTables : public sql::OriginTables {
 public:
  explicit SqliteOriginTables(sqlite3* db) : db_(db) {}

  Result<bool> InsertMessage(const std::string& id, const char* state,
                             const std::string& note) override {
    return Inserted(Exec(db_,
                         "INSERT OR IGNORE INTO txmq_origin (message_id, state, note)"
                         " VALUES (?1, ?2, ?3)",
                         {Value::Text(id), Value::Text(state), Value::Text(note)}));
  }
  Result<std::optional<sql::OriginRecord>> Message(const std::string& id) override {
    return Read(
        Exec(db_, "SELECT state, note FROM txmq_origin WHERE message_id = ?1", {Value::Text(id)}));
  }
  Result<bool> InsertTransaction(const std::string& tx, const char* state) override {
    return Inserted(Exec(db_, "INSERT OR IGNORE INTO txmq_tx (tx_id, state) VALUES (?1, ?2)",
                         {Value::Text(tx), Value::Text(state)}));
  }
  Result<std::optional<int64_t>> OriginsSinceMs() override {
    auto r = Exec(db_, "SELECT migrated_at FROM txmq_schema WHERE component = 'outbox.origins'");
    if (!r.ok()) return r.status();
    if (r->rows.empty()) return std::optional<int64_t>();
    return std::optional<int64_t>(r->rows[0][0].AsInt());
  }
  Result<std::optional<sql::OriginRecord>> Transaction(const std::string& tx) override {
    return Read(Exec(db_, "SELECT state, '' FROM txmq_tx WHERE tx_id = ?1", {Value::Text(tx)}));
  }

 private:
  static Result<bool> Inserted(const Result<Rows>& r) {
    if (!r.ok()) return r.status();
    return r->changes == 1;
  }
  static Result<std::optional<sql::OriginRecord>> Read(const Result<Rows>& r) {
    if (!r.ok()) return r.status();
    if (r->rows.empty()) return std::optional<sql::OriginRecord>();
    return std::optional<sql::OriginRecord>(
        sql::OriginRecord{r->rows[0][0].AsText(), r->rows[0][1].AsText()});
  }
  sqlite3* db_;
};

}  // namespace

Result<Handler> CompensationHandler(Inbox& inbox, SqlCompensationHandler undo,
                                    CompensationOptions options) {
  if (!undo) return Status::InvalidArgument("the compensation handler is empty");
  if (options.record_horizon.count() <= 0) {
    return Status::InvalidArgument("compensation options: record_horizon must be positive");
  }
  // The tables the check reads, also where this service has no outbox or
  // no transaction records (yet).
  auto db = Database::Open(inbox.options().path, inbox.options().busy_timeout);
  if (!db.ok()) return db.status();
  if (Status s = MigrateOutbox(db->get()); !s.ok()) return s;
  if (Status s = MigrateTransactions(db->get()); !s.ok()) return s;
  const std::string group = inbox.options().group;
  auto handler = [undo = std::move(undo), options, group](sqlite3* db, const Received& m) {
    SqliteOriginTables tables(db);
    auto mark_skipped = [&](const std::string& note) -> Status {
      auto r =
          Exec(db,
               "UPDATE txmq_inbox SET state = 'S', note = ?3"
               " WHERE group_name = ?1 AND message_id = ?2",
               {Value::Text(group), Value::Text(sql::CompensationDedupKey(m)), Value::Text(note)});
      return r.ok() ? Status::OK() : r.status();
    };
    return sql::RunCompensation(m, options, tables, mark_skipped,
                                [&](const Compensation& c) { return undo(db, c); });
  };
  return inbox.Idempotent(std::move(handler), sql::CompensationDedupKey);
}

Status OnCompensation(Consumer& consumer, Inbox& inbox, const std::string& producer_group,
                      SqlCompensationHandler undo, CompensationOptions options) {
  if (producer_group.empty()) return Status::InvalidArgument("the producer group is empty");
  auto handler = CompensationHandler(inbox, std::move(undo), options);
  if (!handler.ok()) return handler.status();
  return consumer.Subscribe(CompensationTopic(producer_group), std::move(*handler));
}

}  // namespace txmq::sqlite
