// sqlite::Inbox: insert-first dedup records in the handler's own
// transaction (see txmq/sqlite/inbox.h).
#include "txmq/sqlite/inbox.h"

#include <functional>

#include "consumer/src/compensation_message.h"
#include "producer/src/sql/inbox_states.h"
#include "producer/src/sqlite/sqlite_db.h"
#include "producer/src/sqlite/sqlite_library_add.h"
#include "producer/src/sqlite/sqlite_schema.h"
#include "producer/src/sweep_throttle.h"
#include "protocol/src/log.h"

namespace txmq::sqlite {

namespace {

// What the one transaction of a message came to.
struct Attempt {
  enum class Then {
    kCommit,    // commit, then answer `result`
    kRollback,  // roll back, then answer `result`
    kGiveBack,  // roll back and give the message back (`why`)
  };
  Then then;
  ConsumeResult result = ConsumeResult::Success();
  std::string why{};
};

}  // namespace

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

  // The original: at most once per key; after its undo, not at all.
  ConsumeResult Idempotent(const SqlHandler& handler, const std::string& key, const Received& m) {
    ConsumeResult result = Handle(m, [&](sqlite3* db) -> Attempt {
      auto claimed = Claim(db, key, "P", "");
      if (!claimed.ok()) return GiveBackAttempt(claimed.status().ToString());
      if (*claimed) return RunHandler(handler, db, m);
      auto skipped = Exec(db,
                          "UPDATE txmq_inbox SET state = 'S', note = 'arrived after its undo ('"
                          " || note || '); not applied', processed_at = " +
                              std::string(kNowMs) +
                              " WHERE group_name = ?1 AND message_id = ?2 AND state = 'F'",
                          {Value::Text(options_.group), Value::Text(key)});
      if (!skipped.ok()) return GiveBackAttempt(skipped.status().ToString());
      if (skipped->changes == 1) {
        log_->info("message {} of '{}' arrived after its undo; acknowledged, not applied", m.id,
                   m.topic);
        return {Attempt::Then::kCommit};
      }
      log_->debug("sqlite inbox of group '{}': message {} was processed before; acknowledged",
                  options_.group, m.id);
      return {Attempt::Then::kRollback};
    });
    if (result.kind() != ConsumeResult::Kind::kCompensate) return result;
    return Compensate(m, key, result.reason());
  }

  // An undo of the message keyed `target`: after it, once; before it, a fence.
  ConsumeResult Undo(const SqlHandler& handler, const std::string& target, const Received& m) {
    return Handle(m, [&](sqlite3* db) -> Attempt {
      auto fenced = Claim(db, target, "F", "undo " + m.id);
      if (!fenced.ok()) return GiveBackAttempt(fenced.status().ToString());
      if (*fenced) {
        log_->info("undo {} arrived before message {}; fenced it", m.id, target);
        return {Attempt::Then::kCommit};
      }
      auto state =
          Exec(db, "SELECT state FROM txmq_inbox WHERE group_name = ?1 AND message_id = ?2",
               {Value::Text(options_.group), Value::Text(target)});
      if (!state.ok()) return GiveBackAttempt(state.status().ToString());
      if (state->rows.empty() || state->rows[0][0].AsText() != "P") {
        return {Attempt::Then::kRollback};  // nothing to undo
      }
      Attempt run = RunHandler(handler, db, m);
      if (run.result.kind() == ConsumeResult::Kind::kCompensate) {
        log_->error("an undo cannot be compensated (message {}): will retry", m.id);
        return {Attempt::Then::kRollback, ConsumeResult::RetryLater()};
      }
      if (run.then != Attempt::Then::kCommit) return run;
      if (!InTransaction(db)) {
        // Marking it undone outside the handler's transaction could record
        // an undo whose writes were rolled back.
        return GiveBackAttempt("the undo handler ended the inbox's transaction itself");
      }
      auto undone = Exec(
          db,
          "UPDATE txmq_inbox SET state = 'U', note = ?3, processed_at = " + std::string(kNowMs) +
              " WHERE group_name = ?1 AND message_id = ?2",
          {Value::Text(options_.group), Value::Text(target), Value::Text("undone by " + m.id)});
      if (!undone.ok()) return GiveBackAttempt(undone.status().ToString());
      return run;
    });
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

  Result<std::optional<InboxRecord>> Lookup(const std::string& key) {
    auto db = pool_.Take();
    if (!db.ok()) return db.status();
    auto r = Exec(db->get(),
                  "SELECT state, note, processed_at FROM txmq_inbox"
                  " WHERE group_name = ?1 AND message_id = ?2",
                  {Value::Text(options_.group), Value::Text(key)});
    pool_.Give(std::move(*db));
    if (!r.ok()) return r.status();
    if (r->rows.empty()) return std::optional<InboxRecord>();
    const Row& row = r->rows[0];
    auto state = sql::StateFromCode(row[0].AsText());
    if (!state) {
      return Status::Corruption("txmq_inbox record '" + key + "' of group '" + options_.group +
                                "' has state '" + row[0].AsText() +
                                "', which this txmq does not know");
    }
    return std::optional<InboxRecord>(InboxRecord{
        .state = *state,
        .at = std::chrono::system_clock::time_point(std::chrono::milliseconds(row[2].AsInt())),
        .note = row[1].AsText()});
  }

  Result<int64_t> RemoveExpired() {
    auto db = pool_.Take();
    if (!db.ok()) return db.status();
    auto n = producer::SweepAll([&](bool* more) { return Sweep(db->get(), more); });
    pool_.Give(std::move(*db));
    return n;
  }

  const InboxOptions& options() const { return options_; }

 private:
  ConsumeResult GiveBack(const Received& m, const std::string& why) {
    log_->warn("sqlite inbox of group '{}': message {} not processed ({}); retried later",
               options_.group, m.id, why);
    return ConsumeResult::RetryLater();
  }

  static Attempt GiveBackAttempt(std::string why) {
    return {Attempt::Then::kGiveBack, ConsumeResult::RetryLater(), std::move(why)};
  }

  // `body` runs in a BEGIN IMMEDIATE transaction on a pooled handle; one
  // attempt: SQLite's single writer leaves no serialization failures to
  // run again.
  ConsumeResult Handle(const Received& m, const std::function<Attempt(sqlite3*)>& body) {
    auto taken = pool_.Take();
    if (!taken.ok()) return GiveBack(m, taken.status().ToString());
    Database db = std::move(*taken);
    ConsumeResult result = Transact(db.get(), m, body);
    RollbackIfOpen(db.get());
    MaybeSweep(db.get());
    pool_.Give(std::move(db));
    return result;
  }

  ConsumeResult Transact(sqlite3* db, const Received& m,
                         const std::function<Attempt(sqlite3*)>& body) {
    if (auto r = Exec(db, "BEGIN IMMEDIATE"); !r.ok()) return GiveBack(m, r.status().ToString());
    Attempt a = body(db);
    if (a.then == Attempt::Then::kCommit && !InTransaction(db)) {
      // The handler ended the transaction itself (COMMIT, ROLLBACK, or a
      // statement error that rolled it back): the record's fate is not
      // known to go with the handler's writes.
      a = GiveBackAttempt("the handler ended the inbox's transaction itself");
    }
    if (a.then != Attempt::Then::kCommit) {
      RollbackIfOpen(db);
      if (a.then == Attempt::Then::kRollback) return a.result;
      return GiveBack(m, a.why);
    }
    if (auto c = Exec(db, "COMMIT"); !c.ok()) return GiveBack(m, c.status().ToString());
    return a.result;
  }

  // Inserts the record of `key` unless the group has one: whether this
  // transaction owns it now.
  Result<bool> Claim(sqlite3* db, const std::string& key, const char* state,
                     const std::string& note) {
    auto inserted = Exec(
        db,
        "INSERT OR IGNORE INTO txmq_inbox (group_name, message_id, state, note)"
        " VALUES (?1, ?2, ?3, ?4)",
        {Value::Text(options_.group), Value::Text(key), Value::Text(state), Value::Text(note)});
    if (!inserted.ok()) return inserted.status();
    return inserted->changes == 1;
  }

  Attempt RunHandler(const SqlHandler& handler, sqlite3* db, const Received& m) {
    ConsumeResult result = ConsumeResult::RetryLater();
    try {
      result = handler(db, m);
    } catch (const std::exception& e) {
      return GiveBackAttempt(std::string("the handler threw: ") + e.what());
    }
    if (result.kind() != ConsumeResult::Kind::kSuccess) return {Attempt::Then::kRollback, result};
    return {Attempt::Then::kCommit};
  }

  // A business failure: the handler's writes are gone; the failure record
  // and the compensation commit together.
  ConsumeResult Compensate(const Received& m, const std::string& key, const std::string& reason) {
    if (options_.outbox == nullptr) {
      return GiveBack(m, "the handler asked to compensate (" + reason +
                             ") but the inbox has no outbox to send it");
    }
    auto compensation = consumer::MakeCompensation(m, options_.group, reason);
    if (!compensation.ok()) return GiveBack(m, compensation.status().message());
    ConsumeResult result = Handle(m, [&](sqlite3* db) -> Attempt {
      auto claimed = Claim(db, key, "X", reason);
      if (!claimed.ok()) return GiveBackAttempt(claimed.status().ToString());
      if (!*claimed) return {Attempt::Then::kRollback};  // recorded meanwhile by another copy
      if (Status a = AddStamped(*options_.outbox, db, std::move(*compensation)); !a.ok()) {
        return GiveBackAttempt("compensation not recorded: " + a.ToString());
      }
      return {Attempt::Then::kCommit};
    });
    if (result.kind() == ConsumeResult::Kind::kSuccess) {
      log_->info("message {} of '{}' failed in group '{}' ({}); compensation sent", m.id, m.topic,
                 options_.group, reason);
    }
    return result;
  }

  void MaybeSweep(sqlite3* db) {
    if (Status s = sweeps_.RunIfDue([&](bool* more) { return Sweep(db, more); }); !s.ok()) {
      log_->warn("removing old records of txmq_inbox failed: {}", s.ToString());
    }
  }

  Result<int64_t> Sweep(sqlite3* db, bool* more) {
    return DeleteOlderThan(db, "txmq_inbox", "processed_at", options_.horizon, options_.group, "",
                           more);
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

Handler Inbox::Idempotent(SqlHandler handler, DedupKeyFn dedup_key) {
  return [impl = impl_.get(), handler = std::move(handler),
          dedup_key = std::move(dedup_key)](const Received& m) {
    return impl->Idempotent(handler, dedup_key ? dedup_key(m) : m.id, m);
  };
}

Handler Inbox::Undo(SqlHandler handler, DedupKeyFn undoes) {
  return [impl = impl_.get(), handler = std::move(handler), undoes = std::move(undoes)](
             const Received& m) { return impl->Undo(handler, undoes(m), m); };
}

Result<std::optional<InboxRecord>> Inbox::Lookup(const std::string& dedup_key) {
  return impl_->Lookup(dedup_key);
}

const InboxOptions& Inbox::options() const { return impl_->options(); }

Result<bool> Inbox::Processed(const std::string& message_id) {
  return impl_->Processed(message_id);
}

Result<int64_t> Inbox::RemoveExpired() { return impl_->RemoveExpired(); }

}  // namespace txmq::sqlite
