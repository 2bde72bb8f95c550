#include "tools/txmqctl/outbox_source.h"

#include <libpq-fe.h>

#include "producer/src/pg/pg_connection.h"
#include "producer/src/pg/pg_outbox_table.h"
#include "producer/src/sqlite/sqlite_db.h"
#include "producer/src/sqlite/sqlite_outbox_table.h"
#include "txmq/local_store.h"

namespace txmq::ctl {

namespace {

class LevelDbSource : public OutboxSource {
 public:
  LevelDbSource(std::unique_ptr<LocalStore> store, std::string path)
      : store_(std::move(store)), path_(std::move(path)) {}
  Result<std::vector<OutboxRow>> Rows(bool parked) override {
    return Outbox::List(*store_, parked);
  }
  Status Requeue(const std::string& id, const std::string& op) override {
    return Outbox::Requeue(*store_, id, op);
  }
  Status Delete(const std::string& id, const std::string& op) override {
    return Outbox::Delete(*store_, id, op);
  }
  std::string name() const override { return path_; }
  bool live() const override { return false; }

 private:
  std::unique_ptr<LocalStore> store_;
  std::string path_;
};

class PostgresSource : public OutboxSource {
 public:
  explicit PostgresSource(pg::Connection conn) : conn_(std::move(conn)) {}
  Result<std::vector<OutboxRow>> Rows(bool parked) override {
    return pg::ListRows(conn_.get(), parked);
  }
  Status Requeue(const std::string& id, const std::string& op) override {
    return pg::RequeueRow(conn_.get(), id, op);
  }
  Status Delete(const std::string& id, const std::string& op) override {
    return pg::DeleteRow(conn_.get(), id, false, op);
  }
  std::string name() const override { return std::string("database '") + PQdb(conn_.get()) + "'"; }
  bool live() const override { return true; }

 private:
  pg::Connection conn_;
};

class SqliteSource : public OutboxSource {
 public:
  SqliteSource(sqlite::Database db, std::string path)
      : db_(std::move(db)), path_(std::move(path)) {}
  Result<std::vector<OutboxRow>> Rows(bool parked) override {
    return sqlite::ListRows(db_.get(), parked);
  }
  Status Requeue(const std::string& id, const std::string& op) override {
    return sqlite::RequeueRow(db_.get(), id, op);
  }
  Status Delete(const std::string& id, const std::string& op) override {
    return sqlite::DeleteRow(db_.get(), id, false, op);
  }
  std::string name() const override { return "SQLite database '" + path_ + "'"; }
  bool live() const override { return true; }

 private:
  sqlite::Database db_;
  std::string path_;
};

Result<std::unique_ptr<OutboxSource>> OpenSqlite(const std::string& path) {
  // Never created: a mistyped path is an error, not a new empty database.
  auto db = sqlite::Database::Open(path, std::chrono::milliseconds(5000), /*create=*/false);
  if (!db.ok()) return db.status();
  auto has_table = sqlite::Exec(
      db->get(), "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'txmq_outbox'");
  if (!has_table.ok()) return has_table.status();
  if (has_table->rows.empty()) {
    return Status::NotFound("SQLite database '" + path +
                            "' has no txmq_outbox table (no txmq outbox ever started there)");
  }
  return std::unique_ptr<OutboxSource>(new SqliteSource(std::move(*db), path));
}

}  // namespace

Result<std::unique_ptr<OutboxSource>> OutboxSource::Open(const std::string& db,
                                                         const std::string& pg,
                                                         const std::string& sqlite) {
  if (!db.empty() + !pg.empty() + !sqlite.empty() != 1) {
    return Status::InvalidArgument(
        "name the outbox: --db DIR (a LevelDB store), --pg CONNINFO (a PostgreSQL database) or "
        "--sqlite FILE (a SQLite database)");
  }
  if (!sqlite.empty()) return OpenSqlite(sqlite);
  if (!pg.empty()) {
    auto conn = pg::Connection::Open(pg);
    if (!conn.ok()) return conn.status();
    auto has_table = pg::Exec(conn->get(), "SELECT to_regclass('txmq_outbox') IS NOT NULL");
    if (!has_table.ok()) return has_table.status();
    if (pg::Field(has_table->get(), 0, 0) != "t") {
      return Status::NotFound(std::string("database '") + PQdb(conn->get()) +
                              "' has no txmq_outbox table (no txmq outbox ever started there)");
    }
    return std::unique_ptr<OutboxSource>(new PostgresSource(std::move(*conn)));
  }
  auto store = LocalStore::Open(db, {.create_if_missing = false});
  if (!store.ok()) {
    if (store.status().code() == StatusCode::kUnavailable) {
      // Not UNAVAILABLE: that would send the reader looking for the broker.
      return Status::FailedPrecondition("the store at '" + db +
                                        "' is open by a running service (its LevelDB lock is "
                                        "held); stop the service to change its outbox offline");
    }
    return store.status();
  }
  return std::unique_ptr<OutboxSource>(new LevelDbSource(std::move(*store), db));
}

}  // namespace txmq::ctl
