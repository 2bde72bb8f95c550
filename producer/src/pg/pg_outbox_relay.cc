// The PostgreSQL side of the outbox relay (sql::Relay does the rest): the
// statements of pg_outbox_table.h on the relay's own connection, which
// LISTENs on txmq_outbox so an Add with notify_on_add wakes the relay.
//
// Its statements are prepared on that connection (PreparedStatements),
// parsed and planned once per connection.
//
// The relay's writes (claims, deletions of sent rows, failed attempts)
// commit without waiting for the WAL flush, and the sent rows of a batch
// are deleted by one statement: a database crash may lose the last few hundred milliseconds of
// them, and then a row is claimed and sent again, which the broker's dedup
// window stores once, in the same place in its key's order. So the relay
// adds no fsync of its own to the database the service's transactions
// wait on. The service's Add commits as the service's transaction says
// (synchronous by default): that is the write that must not be lost.
#include "producer/src/pg/pg_outbox_impl.h"
#include "producer/src/sql/origin_check.h"
#include "protocol/src/log.h"

namespace txmq::pg {

Status PrepareRelayConnection(PGconn* conn) {
  // No bitmap scans for the relay's statements. The outbox is a queue: its
  // indexes hold an entry for every row deleted since the last vacuum
  // (autovacuum looks once a minute), thousands under load, and the
  // planner, counting on a few live rows, reads them with a bitmap scan
  // plus a sort, which visits every dead row's heap page at each claim
  // (6 ms for 29 rows among 2,000 dead ones, measured). An index scan in
  // seq order stops at the claim's LIMIT and marks the dead entries it
  // meets, so the next scan skips them (0.5 ms for the same claim).
  for (const char* sql :
       {"SET synchronous_commit = off", "SET enable_bitmapscan = off", "LISTEN txmq_outbox"}) {
    if (auto r = Exec(conn, sql); !r.ok()) return r.status();
  }
  return Status::OK();
}

namespace {

class PgRelayTable : public sql::RelayTable {
 public:
  PgRelayTable(std::string conninfo, Connection conn, bool hold_key_behind_parked)
      : conninfo_(std::move(conninfo)),
        hold_key_behind_parked_(hold_key_behind_parked),
        conn_(std::move(conn)) {}

  Status Connect() override {
    if (!conn_.broken()) return Status::OK();
    auto c = Connection::Open(conninfo_);
    if (!c.ok()) return c.status();
    if (Status s = PrepareRelayConnection(c->get()); !s.ok()) return s;
    conn_ = std::move(*c);
    prepared_.Clear();
    return Status::OK();
  }
  bool broken() const override { return conn_.broken(); }
  Result<std::vector<sql::ClaimedRow>> Claim(const std::string& owner,
                                             std::chrono::milliseconds lease, int limit,
                                             bool hold) override {
    return ClaimDue(conn_.get(), owner, lease, limit, hold, &prepared_);
  }
  Result<bool> MarkSent(const std::string& id, int64_t fence) override {
    return pg::MarkSent(conn_.get(), id, fence, &prepared_);
  }
  Result<bool> MarkFailed(const std::string& id, int64_t fence, bool park,
                          std::chrono::milliseconds retry_in, const std::string& error) override {
    return pg::MarkFailed(conn_.get(), id, fence, park, retry_in, error, &prepared_);
  }
  Status Release(const std::string& owner) override { return ReleaseClaims(conn_.get(), owner); }
  Result<std::vector<bool>> MarkSentMany(
      const std::vector<std::pair<std::string, int64_t>>& rows) override {
    return pg::MarkSentMany(conn_.get(), rows, &prepared_);
  }
  Status RestartOriginHorizon(const std::vector<std::string>& ids) override {
    return pg::RestartOriginHorizon(conn_.get(), ids, &prepared_);
  }
  Result<int64_t> RemoveExpiredOrigins(std::chrono::milliseconds horizon, bool* more) override {
    return DeleteOlderThan(conn_.get(), "txmq_origin", "recorded_at", horizon, "",
                           sql::kOriginStillInOutbox, more);
  }
  Result<std::chrono::milliseconds> NextDueIn() override {
    return pg::NextDueIn(conn_.get(), hold_key_behind_parked_, &prepared_);
  }
  int wake_fd() override { return PQsocket(conn_.get()); }
  bool Drain() override {
    PQconsumeInput(conn_.get());  // a broken link shows in PQstatus
    bool any = false;
    while (PGnotify* note = PQnotifies(conn_.get())) {
      PQfreemem(note);
      any = true;
    }
    return any;
  }
  std::string where() const override { return "database '" + Redacted(conninfo_) + "'"; }
  std::string ctl_flag() const override { return "--pg '" + Redacted(conninfo_) + "'"; }

 private:
  const std::string conninfo_;
  const bool hold_key_behind_parked_;
  Connection conn_;
  PreparedStatements prepared_;  // of conn_
};

}  // namespace

std::unique_ptr<sql::RelayTable> MakeRelayTable(std::string conninfo, Connection conn,
                                                bool hold_key_behind_parked) {
  return std::make_unique<PgRelayTable>(std::move(conninfo), std::move(conn),
                                        hold_key_behind_parked);
}

}  // namespace txmq::pg
