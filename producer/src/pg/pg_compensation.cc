// pg::OnCompensation (see txmq/pg/compensation.h): the shared rules of
// sql/compensation_run.h on PostgreSQL statements.
#include "txmq/pg/compensation.h"

#include "producer/src/pg/pg_connection.h"
#include "producer/src/pg/pg_schema.h"
#include "producer/src/sql/compensation_run.h"
#include "txmq/names.h"

namespace txmq::pg {

namespace {

// Run in the inbox's transaction. An insert that meets the original's
// uncommitted record waits for its transaction to end (origin_check.h).
class PgOriginTables : public sql::OriginTables {
 public:
  explicit PgOriginTables(PGconn* conn) : conn_(conn) {}

  Result<bool> InsertMessage(const std::string& id, const char* state,
                             const std::string& note) override {
    return Inserted(Exec(conn_,
                         "INSERT INTO txmq_origin (message_id, state, note) VALUES ($1, $2, $3)"
                         " ON CONFLICT DO NOTHING",
                         {Param::Text(id), Param::Text(state), Param::Text(note)}));
  }
  Result<std::optional<sql::OriginRecord>> Message(const std::string& id) override {
    return Read(Exec(conn_, "SELECT state, note FROM txmq_origin WHERE message_id = $1",
                     {Param::Text(id)}));
  }
  Result<bool> InsertTransaction(const std::string& tx, const char* state) override {
    return Inserted(
        Exec(conn_, "INSERT INTO txmq_tx (tx_id, state) VALUES ($1, $2) ON CONFLICT DO NOTHING",
             {Param::Text(tx), Param::Text(state)}));
  }
  Result<std::optional<int64_t>> OriginsSinceMs() override {
    auto r = Exec(conn_,
                  "SELECT (extract(epoch FROM migrated_at) * 1000)::bigint FROM txmq_schema"
                  " WHERE component = 'outbox.origins'");
    if (!r.ok()) return r.status();
    if (PQntuples(r->get()) == 0) return std::optional<int64_t>();
    return std::optional<int64_t>(IntField(r->get(), 0, 0));
  }
  Result<std::optional<sql::OriginRecord>> Transaction(const std::string& tx) override {
    return Read(Exec(conn_, "SELECT state, '' FROM txmq_tx WHERE tx_id = $1", {Param::Text(tx)}));
  }

 private:
  static Result<bool> Inserted(const Result<ResultPtr>& r) {
    if (!r.ok()) return r.status();
    return RowsChanged(r->get()) == 1;
  }
  static Result<std::optional<sql::OriginRecord>> Read(const Result<ResultPtr>& r) {
    if (!r.ok()) return r.status();
    if (PQntuples(r->get()) == 0) return std::optional<sql::OriginRecord>();
    return std::optional<sql::OriginRecord>(
        sql::OriginRecord{std::string(Field(r->get(), 0, 0)), std::string(Field(r->get(), 0, 1))});
  }
  PGconn* conn_;
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
  auto conn = Connection::Open(inbox.options().conninfo);
  if (!conn.ok()) return conn.status();
  if (Status s = MigrateOutbox(conn->get()); !s.ok()) return s;
  if (Status s = MigrateTransactions(conn->get()); !s.ok()) return s;
  const std::string group = inbox.options().group;
  auto handler = [undo = std::move(undo), options, group](PGconn* conn, const Received& m) {
    PgOriginTables tables(conn);
    auto mark_skipped = [&](const std::string& note) -> Status {
      auto r =
          Exec(conn,
               "UPDATE txmq_inbox SET state = 'S', note = $3"
               " WHERE group_name = $1 AND message_id = $2",
               {Param::Text(group), Param::Text(sql::CompensationDedupKey(m)), Param::Text(note)});
      return r.ok() ? Status::OK() : r.status();
    };
    return sql::RunCompensation(m, options, tables, mark_skipped,
                                [&](const Compensation& c) { return undo(conn, c); });
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

}  // namespace txmq::pg
