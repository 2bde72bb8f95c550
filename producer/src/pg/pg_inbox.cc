// pg::Inbox: insert-first dedup records in the handler's own transaction
// (see txmq/pg/inbox.h). Handlers run on the consumer's handler threads;
// each takes a pooled connection for the whole call.
#include "txmq/pg/inbox.h"

#include <atomic>

#include "consumer/src/compensation_message.h"
#include "producer/src/pg/pg_connection.h"
#include "producer/src/pg/pg_library_add.h"
#include "producer/src/pg/pg_schema.h"
#include "protocol/src/log.h"
#include "protocol/src/util.h"

namespace txmq::pg {

namespace {

constexpr int kMaxReruns = 16;

}  // namespace

class Inbox::Impl {
 public:
  explicit Impl(InboxOptions options)
      : options_(std::move(options)),
        log_(Logger("inbox")),
        pool_(options_.conninfo, options_.pool_size) {}

  Status Open() {
    if (options_.group.empty()) return Status::InvalidArgument("pg inbox: group is empty");
    if (options_.horizon.count() <= 0 || options_.pool_size < 1) {
      return Status::InvalidArgument(
          "pg inbox options: horizon must be positive, pool_size at "
          "least 1");
    }
    auto conn = Connection::Open(options_.conninfo);
    if (!conn.ok()) return conn.status();
    if (Status s = MigrateInbox(conn->get()); !s.ok()) return s;
    pool_.Give(std::move(*conn));
    return Status::OK();
  }

  ConsumeResult Handle(const SqlHandler& handler, const Received& m) {
    auto taken = pool_.Take();
    if (!taken.ok()) {
      log_->warn("pg inbox of group '{}': message {} given back: {}", options_.group, m.id,
                 taken.status().ToString());
      return ConsumeResult::RetryLater();
    }
    Connection conn = std::move(*taken);
    ConsumeResult result = Run(conn.get(), handler, m);
    MaybeSweep(conn.get());
    pool_.Give(std::move(conn));
    return result;
  }

  Result<bool> Processed(const std::string& id) {
    auto conn = pool_.Take();
    if (!conn.ok()) return conn.status();
    auto r = Exec(conn->get(), "SELECT 1 FROM txmq_inbox WHERE group_name = $1 AND message_id = $2",
                  {Param::Text(options_.group), Param::Text(id)});
    pool_.Give(std::move(*conn));
    if (!r.ok()) return r.status();
    return PQntuples(r->get()) == 1;
  }

  Result<int64_t> RemoveExpired() {
    auto conn = pool_.Take();
    if (!conn.ok()) return conn.status();
    auto n = Sweep(conn->get());
    pool_.Give(std::move(*conn));
    return n;
  }

 private:
  // One message: up to kMaxReruns transactions until one commits or the
  // outcome is not a serialization failure.
  ConsumeResult Run(PGconn* conn, const SqlHandler& handler, const Received& m) {
    const char* begin = options_.repeatable_read ? "BEGIN ISOLATION LEVEL REPEATABLE READ"
                                                 : "BEGIN ISOLATION LEVEL READ COMMITTED";
    std::string why;
    for (int run = 0; run < kMaxReruns; ++run) {
      if (auto r = Exec(conn, begin); !r.ok()) {
        why = r.status().ToString();
        break;
      }
      auto inserted = Exec(conn,
                           "INSERT INTO txmq_inbox (group_name, message_id) VALUES ($1, $2) "
                           "ON CONFLICT DO NOTHING",
                           {Param::Text(options_.group), Param::Text(m.id)});
      if (!inserted.ok()) {
        Rollback(conn);
        if (inserted.status().code() == StatusCode::kAborted) continue;  // a fresh snapshot
        why = inserted.status().ToString();
        break;
      }
      if (RowsChanged(inserted->get()) == 0) {
        Rollback(conn);
        log_->debug("pg inbox of group '{}': message {} was processed before; acknowledged",
                    options_.group, m.id);
        return ConsumeResult::Success();
      }
      ConsumeResult result = ConsumeResult::RetryLater();
      try {
        result = handler(conn, m);
      } catch (const std::exception& e) {
        Rollback(conn);
        log_->error("pg inbox of group '{}': handler threw on message {}: {}; retried later",
                    options_.group, m.id, e.what());
        return ConsumeResult::RetryLater();
      }
      if (result.kind() != ConsumeResult::Kind::kSuccess) {
        Rollback(conn);
        if (result.kind() == ConsumeResult::Kind::kCompensate) {
          return Compensate(conn, m, result.reason());
        }
        return result;
      }
      if (PQtransactionStatus(conn) == PQTRANS_INERROR) {
        // A statement of the handler failed and the handler went on: the
        // transaction can only roll back. Run it again (a serialization
        // failure passes); a handler that always fails ends below.
        Rollback(conn);
        why = "the handler returned Success from a failed transaction";
        continue;
      }
      auto committed = Exec(conn, "COMMIT");
      if (committed.ok()) return ConsumeResult::Success();
      if (committed.status().code() != StatusCode::kAborted) {
        why = committed.status().ToString();
        break;
      }
    }
    if (PQtransactionStatus(conn) != PQTRANS_IDLE) Rollback(conn);
    log_->warn("pg inbox of group '{}': message {} not processed ({}); retried later",
               options_.group, m.id, why.empty() ? "serialization failures in a row" : why);
    return ConsumeResult::RetryLater();
  }

  static void Rollback(PGconn* conn) { (void)Exec(conn, "ROLLBACK"); }

  // A business failure: the handler's writes are gone; the failure record
  // and the compensation commit together.
  ConsumeResult Compensate(PGconn* conn, const Received& m, const std::string& reason) {
    if (options_.outbox == nullptr) {
      log_->error(
          "pg inbox of group '{}': handler asked to compensate message {} ({}) but the "
          "inbox has no outbox to send it; retried later",
          options_.group, m.id, reason);
      return ConsumeResult::RetryLater();
    }
    auto compensation = consumer::MakeCompensation(m, options_.group, reason);
    if (!compensation.ok()) {
      log_->error("{}; retried later", compensation.status().message());
      return ConsumeResult::RetryLater();
    }
    Status s = [&]() -> Status {
      if (auto r = Exec(conn, "BEGIN"); !r.ok()) return r.status();
      auto inserted = Exec(conn,
                           "INSERT INTO txmq_inbox (group_name, message_id, state, note) "
                           "VALUES ($1, $2, 'X', $3) ON CONFLICT DO NOTHING",
                           {Param::Text(options_.group), Param::Text(m.id), Param::Text(reason)});
      if (!inserted.ok()) return inserted.status();
      if (RowsChanged(inserted->get()) == 0) {
        return Status::Conflict("recorded meanwhile by another copy");
      }
      if (Status a = AddStamped(*options_.outbox, conn, std::move(*compensation)); !a.ok()) {
        return a;
      }
      auto committed = Exec(conn, "COMMIT");
      return committed.ok() ? Status::OK() : committed.status();
    }();
    if (PQtransactionStatus(conn) != PQTRANS_IDLE) Rollback(conn);
    if (s.code() == StatusCode::kConflict) return ConsumeResult::Success();
    if (!s.ok()) {
      log_->error(
          "pg inbox of group '{}': compensation for message {} not recorded: {}; "
          "retried later",
          options_.group, m.id, s.ToString());
      return ConsumeResult::RetryLater();
    }
    log_->info("message {} of '{}' failed in group '{}' ({}); compensation sent", m.id, m.topic,
               options_.group, reason);
    return ConsumeResult::Success();
  }

  void MaybeSweep(PGconn* conn) {
    if (!sweeps_.Due()) return;
    if (auto n = Sweep(conn); !n.ok()) {
      log_->warn("removing old records of txmq_inbox failed: {}", n.status().ToString());
    }
  }

  Result<int64_t> Sweep(PGconn* conn) {
    return DeleteOlderThan(conn, "txmq_inbox", "processed_at", options_.horizon, options_.group);
  }

  const InboxOptions options_;
  std::shared_ptr<spdlog::logger> log_;
  SweepThrottle sweeps_;
  ConnectionPool pool_;
};

Result<std::unique_ptr<Inbox>> Inbox::Open(InboxOptions options) {
  auto impl = std::make_unique<Impl>(std::move(options));
  if (Status s = impl->Open(); !s.ok()) return s;
  return std::unique_ptr<Inbox>(new Inbox(std::move(impl)));
}

Inbox::Inbox(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Inbox::~Inbox() = default;

Handler Inbox::Idempotent(SqlHandler handler) {
  return [impl = impl_.get(), handler = std::move(handler)](const Received& m) {
    return impl->Handle(handler, m);
  };
}

Result<bool> Inbox::Processed(const std::string& message_id) {
  return impl_->Processed(message_id);
}

Result<int64_t> Inbox::RemoveExpired() { return impl_->RemoveExpired(); }

}  // namespace txmq::pg
