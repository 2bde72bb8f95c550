// sqlite::Inbox: insert-first dedup records in the handler's own
// transaction (see txmq/sqlite/inbox.h).
#include "txmq/sqlite/inbox.h"

#include "consumer/src/compensation_message.h"
#include "producer/src/sqlite/sqlite_db.h"
#include "producer/src/sqlite/sqlite_library_add.h"
#include "producer/src/sqlite/sqlite_schema.h"
#include "producer/src/sweep_throttle.h"
#include "protocol/src/log.h"

namespace txmq::sqlite {

class Inbox::Impl {
 public:
  explicit Impl(InboxOptions options)
      : options_(std::move(options)),
        log_(Logger("inbox")),
        pool_(options_.path, options_.busy_timeout, options_.pool_size) {}

  Status Open() {
    if (options_.group.empty()) return Status::InvalidArgument("sqlite inbox: group is empty");
    if (options_.path.empty() || options_.horizon.count() <= 0 || options_.pool_size < 1) {
      return Status::InvalidArgument(
          "sqlite inbox options: path must be set, horizon positive, pool_size at least 1");
    }
    auto db = pool_.Take();
    if (!db.ok()) return db.status();
    if (Status s = MigrateInbox(db->get()); !s.ok()) return s;
    pool_.Give(std::move(*db));
    return Status::OK();
  }

  ConsumeResult Handle(const SqlHandler& handler, const Received& m) {
    auto taken = pool_.Take();
    if (!taken.ok()) return GiveBack(m, taken.status().ToString());
    Database db = std::move(*taken);
    ConsumeResult result = Run(db.get(), handler, m);
    RollbackIfOpen(db.get());
    MaybeSweep(db.get());
    pool_.Give(std::move(db));
    return result;
  }

  Result<bool> Processed(const std::string& id) {
    auto db = pool_.Take();
    if (!db.ok()) return db.status();
    auto r = Exec(db->get(), "SELECT 1 FROM txmq_inbox WHERE group_name = ?1 AND message_id = ?2",
                  {Value::Text(options_.group), Value::Text(id)});
    pool_.Give(std::move(*db));
    if (!r.ok()) return r.status();
    return r->rows.size() == 1;
  }

  Result<int64_t> RemoveExpired() {
    auto db = pool_.Take();
    if (!db.ok()) return db.status();
    auto n = Sweep(db->get());
    pool_.Give(std::move(*db));
    return n;
  }

 private:
  ConsumeResult GiveBack(const Received& m, const std::string& why) {
    log_->warn("sqlite inbox of group '{}': message {} not processed ({}); retried later",
               options_.group, m.id, why);
    return ConsumeResult::RetryLater();
  }

  // Begins the transaction and inserts the record: true when this copy
  // runs, false for a duplicate (nothing is left open then).
  Result<bool> Claim(sqlite3* db, const Received& m, const char* state, const std::string& note) {
    if (auto r = Exec(db, "BEGIN IMMEDIATE"); !r.ok()) return r.status();
    auto inserted = Exec(
        db,
        "INSERT OR IGNORE INTO txmq_inbox (group_name, message_id, state, note)"
        " VALUES (?1, ?2, ?3, ?4)",
        {Value::Text(options_.group), Value::Text(m.id), Value::Text(state), Value::Text(note)});
    if (!inserted.ok()) return inserted.status();
    if (inserted->changes == 0) {
      RollbackIfOpen(db);
      return false;
    }
    return true;
  }

  ConsumeResult Run(sqlite3* db, const SqlHandler& handler, const Received& m) {
    auto claimed = Claim(db, m, "P", "");
    if (!claimed.ok()) return GiveBack(m, claimed.status().ToString());
    if (!*claimed) {
      log_->debug("sqlite inbox of group '{}': message {} was processed before; acknowledged",
                  options_.group, m.id);
      return ConsumeResult::Success();
    }
    ConsumeResult result = ConsumeResult::RetryLater();
    try {
      result = handler(db, m);
    } catch (const std::exception& e) {
      return GiveBack(m, std::string("the handler threw: ") + e.what());
    }
    if (result.kind() != ConsumeResult::Kind::kSuccess) {
      RollbackIfOpen(db);
      if (result.kind() == ConsumeResult::Kind::kCompensate) {
        return Compensate(db, m, result.reason());
      }
      return result;
    }
    if (!InTransaction(db)) {
      // The handler ended the transaction itself (COMMIT, ROLLBACK, or a
      // statement error that rolled it back): the record's fate is not
      // known to go with the handler's writes.
      return GiveBack(m, "the handler ended the inbox's transaction itself");
    }
    if (auto c = Exec(db, "COMMIT"); !c.ok()) return GiveBack(m, c.status().ToString());
    return ConsumeResult::Success();
  }

  // A business failure: the handler's writes are gone; the failure record
  // and the compensation commit together.
  ConsumeResult Compensate(sqlite3* db, const Received& m, const std::string& reason) {
    if (options_.outbox == nullptr) {
      return GiveBack(m, "the handler asked to compensate (" + reason +
                             ") but the inbox has no outbox to send it");
    }
    auto compensation = consumer::MakeCompensation(m, options_.group, reason);
    if (!compensation.ok()) return GiveBack(m, compensation.status().message());
    auto claimed = Claim(db, m, "X", reason);
    if (!claimed.ok()) return GiveBack(m, claimed.status().ToString());
    if (!*claimed) return ConsumeResult::Success();  // recorded meanwhile by another copy
    if (Status a = AddStamped(*options_.outbox, db, std::move(*compensation)); !a.ok()) {
      return GiveBack(m, "compensation not recorded: " + a.ToString());
    }
    if (auto c = Exec(db, "COMMIT"); !c.ok()) {
      return GiveBack(m, "compensation not recorded: " + c.status().ToString());
    }
    log_->info("message {} of '{}' failed in group '{}' ({}); compensation sent", m.id, m.topic,
               options_.group, reason);
    return ConsumeResult::Success();
  }

  void MaybeSweep(sqlite3* db) {
    if (!sweeps_.Due()) return;
    if (auto n = Sweep(db); !n.ok()) {
      log_->warn("removing old records of txmq_inbox failed: {}", n.status().ToString());
    }
  }

  Result<int64_t> Sweep(sqlite3* db) {
    return DeleteOlderThan(db, "txmq_inbox", "processed_at", options_.horizon, options_.group);
  }

  const InboxOptions options_;
  std::shared_ptr<spdlog::logger> log_;
  producer::SweepThrottle sweeps_;
  DatabasePool pool_;
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

}  // namespace txmq::sqlite
