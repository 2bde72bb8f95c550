// pg::Inbox: insert-first dedup records in the handler's own transaction
// (see txmq/pg/inbox.h). Handlers run on the consumer's handler threads;
// each takes a pooled connection for the whole call.
#include "txmq/pg/inbox.h"

#include <atomic>
#include <functional>

#include "consumer/src/compensation_message.h"
#include "producer/src/pg/pg_connection.h"
#include "producer/src/pg/pg_library_add.h"
#include "producer/src/pg/pg_schema.h"
#include "producer/src/sql/inbox_states.h"
#include "protocol/src/log.h"
#include "protocol/src/util.h"

namespace txmq::pg {

namespace {

constexpr int kMaxReruns = 16;

// What one transaction of a message came to.
struct Attempt {
  enum class Then {
    kCommit,    // commit, then answer `result`
    kRollback,  // roll back, then answer `result`
    kRunAgain,  // roll back and run again at once (`why`)
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

  // `body` runs in a transaction on a pooled connection (see Transact).
  ConsumeResult Handle(const Received& m, const std::function<Attempt(PGconn*)>& body) {
    auto taken = pool_.Take();
    if (!taken.ok()) {
      log_->warn("pg inbox of group '{}': message {} given back: {}", options_.group, m.id,
                 taken.status().ToString());
      return ConsumeResult::RetryLater();
    }
    Connection conn = std::move(*taken);
    ConsumeResult result = Transact(conn.get(), m, body);
    MaybeSweep(conn.get());
    pool_.Give(std::move(conn));
    return result;
  }

  // The original: at most once per key; after its undo, not at all.
  ConsumeResult Idempotent(const SqlHandler& handler, const std::string& key, const Received& m) {
    ConsumeResult result = Handle(m, [&](PGconn* conn) -> Attempt {
      auto claimed = Claim(conn, key, "P", "");
      if (!claimed.ok()) return Failed(claimed.status());
      if (*claimed) return RunHandler(handler, conn, m);
      // A duplicate, or the original after its undo's fence: that one is
      // recorded as skipped (it waited above if the fence was uncommitted).
      auto skipped = Exec(conn,
                          "UPDATE txmq_inbox SET state = 'S', note = 'arrived after its undo ('"
                          " || note || '); not applied', processed_at = clock_timestamp()"
                          " WHERE group_name = $1 AND message_id = $2 AND state = 'F'",
                          {Param::Text(options_.group), Param::Text(key)});
      if (!skipped.ok()) return Failed(skipped.status());
      if (RowsChanged(skipped->get()) == 1) {
        log_->info("message {} of '{}' arrived after its undo; acknowledged, not applied", m.id,
                   m.topic);
        return {Attempt::Then::kCommit};
      }
      log_->debug("pg inbox of group '{}': message {} was processed before; acknowledged",
                  options_.group, m.id);
      return {Attempt::Then::kRollback};
    });
    if (result.kind() != ConsumeResult::Kind::kCompensate) return result;
    return Compensate(m, key, result.reason());
  }

  // An undo of the message keyed `target`: after it, once; before it, a fence.
  ConsumeResult Undo(const SqlHandler& handler, const std::string& target, const Received& m) {
    return Handle(m, [&](PGconn* conn) -> Attempt {
      auto fenced = Claim(conn, target, "F", "undo " + m.id);
      if (!fenced.ok()) return Failed(fenced.status());
      if (*fenced) {
        log_->info("undo {} arrived before message {}; fenced it", m.id, target);
        return {Attempt::Then::kCommit};
      }
      // Two undos of one original take turns on its record.
      auto state = Exec(conn,
                        "SELECT state FROM txmq_inbox WHERE group_name = $1 AND message_id = $2"
                        " FOR UPDATE",
                        {Param::Text(options_.group), Param::Text(target)});
      if (!state.ok()) return Failed(state.status());
      if (PQntuples(state->get()) != 1) {
        return {Attempt::Then::kRunAgain, ConsumeResult::RetryLater(), "its record went meanwhile"};
      }
      if (Field(state->get(), 0, 0) != "P") return {Attempt::Then::kRollback};  // nothing to undo
      Attempt run = RunHandler(handler, conn, m);
      if (run.result.kind() == ConsumeResult::Kind::kCompensate) {
        log_->error("an undo cannot be compensated (message {}): will retry", m.id);
        return {Attempt::Then::kRollback, ConsumeResult::RetryLater()};
      }
      // (RunHandler gives back an undo that ended the transaction itself:
      // marking it undone outside it could record an undo whose writes
      // were rolled back.)
      if (run.then != Attempt::Then::kCommit) return run;
      auto undone = Exec(
          conn,
          "UPDATE txmq_inbox SET state = 'U', note = $3,"
          " processed_at = clock_timestamp()"
          " WHERE group_name = $1 AND message_id = $2",
          {Param::Text(options_.group), Param::Text(target), Param::Text("undone by " + m.id)});
      if (!undone.ok()) return Failed(undone.status());
      return run;
    });
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

  Result<std::optional<InboxRecord>> Lookup(const std::string& key) {
    auto conn = pool_.Take();
    if (!conn.ok()) return conn.status();
    auto r = Exec(conn->get(),
                  "SELECT state, note, (extract(epoch FROM processed_at) * 1000)::bigint"
                  " FROM txmq_inbox WHERE group_name = $1 AND message_id = $2",
                  {Param::Text(options_.group), Param::Text(key)});
    pool_.Give(std::move(*conn));
    if (!r.ok()) return r.status();
    if (PQntuples(r->get()) == 0) return std::optional<InboxRecord>();
    auto state = sql::StateFromCode(Field(r->get(), 0, 0));
    if (!state) {
      return Status::Corruption("txmq_inbox record '" + key + "' of group '" + options_.group +
                                "' has state '" + std::string(Field(r->get(), 0, 0)) +
                                "', which this txmq does not know");
    }
    return std::optional<InboxRecord>(
        InboxRecord{.state = *state,
                    .at = std::chrono::system_clock::time_point(
                        std::chrono::milliseconds(IntField(r->get(), 0, 2))),
                    .note = std::string(Field(r->get(), 0, 1))});
  }

  Result<int64_t> RemoveExpired() {
    auto conn = pool_.Take();
    if (!conn.ok()) return conn.status();
    auto n = producer::SweepAll([&](bool* more) { return Sweep(conn->get(), more); });
    pool_.Give(std::move(*conn));
    return n;
  }

  const InboxOptions& options() const { return options_; }

 private:
  // Inserts the record of `key` unless the group has one: whether this
  // transaction owns it now. A copy whose record is uncommitted waits here.
  Result<bool> Claim(PGconn* conn, const std::string& key, const char* state,
                     const std::string& note) {
    auto inserted = Exec(
        conn,
        "INSERT INTO txmq_inbox (group_name, message_id, state, note)"
        " VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
        {Param::Text(options_.group), Param::Text(key), Param::Text(state), Param::Text(note)});
    if (!inserted.ok()) return inserted.status();
    return RowsChanged(inserted->get()) == 1;
  }

  // A failed statement: a serialization failure runs the transaction again.
  static Attempt Failed(const Status& s) {
    return {s.code() == StatusCode::kAborted ? Attempt::Then::kRunAgain : Attempt::Then::kGiveBack,
            ConsumeResult::RetryLater(), s.ToString()};
  }

  static Attempt FailedHandlerTransaction() {
    // A statement of the handler failed and the handler went on: the
    // transaction can only roll back. Run it again (a serialization
    // failure passes); a handler that always fails ends in Transact.
    return {Attempt::Then::kRunAgain, ConsumeResult::RetryLater(),
            "the handler returned Success from a failed transaction"};
  }

  Attempt RunHandler(const SqlHandler& handler, PGconn* conn, const Received& m) {
    ConsumeResult result = ConsumeResult::RetryLater();
    try {
      result = handler(conn, m);
    } catch (const std::exception& e) {
      log_->error("pg inbox of group '{}': handler threw on message {}: {}; retried later",
                  options_.group, m.id, e.what());
      return {Attempt::Then::kRollback, ConsumeResult::RetryLater()};
    }
    if (result.kind() != ConsumeResult::Kind::kSuccess) return {Attempt::Then::kRollback, result};
    if (PQtransactionStatus(conn) == PQTRANS_INERROR) return FailedHandlerTransaction();
    if (PQtransactionStatus(conn) != PQTRANS_INTRANS) {
      // The handler ended the inbox's transaction (COMMIT or ROLLBACK):
      // the record went with it, or was committed apart from the rest of
      // the handler's writes. PostgreSQL's COMMIT outside a transaction
      // only warns, so acknowledging could lose the message.
      return {Attempt::Then::kGiveBack, ConsumeResult::RetryLater(),
              "the handler ended the inbox's transaction itself"};
    }
    return {Attempt::Then::kCommit};
  }

  // One message: up to kMaxReruns transactions until one commits or the
  // outcome is not a serialization failure.
  ConsumeResult Transact(PGconn* conn, const Received& m,
                         const std::function<Attempt(PGconn*)>& body) {
    const char* begin = options_.repeatable_read ? "BEGIN ISOLATION LEVEL REPEATABLE READ"
                                                 : "BEGIN ISOLATION LEVEL READ COMMITTED";
    std::string why;
    for (int run = 0; run < kMaxReruns; ++run) {
      if (auto r = Exec(conn, begin); !r.ok()) {
        why = r.status().ToString();
        break;
      }
      Attempt a = body(conn);
      if (a.then == Attempt::Then::kCommit && PQtransactionStatus(conn) == PQTRANS_INERROR) {
        a = FailedHandlerTransaction();
      }
      if (a.then != Attempt::Then::kCommit) {
        Rollback(conn);
        if (a.then == Attempt::Then::kRollback) return a.result;
        why = a.why;
        if (a.then == Attempt::Then::kRunAgain) continue;
        break;
      }
      auto committed = Exec(conn, "COMMIT");
      if (committed.ok()) return a.result;
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
  ConsumeResult Compensate(const Received& m, const std::string& key, const std::string& reason) {
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
    ConsumeResult result = Handle(m, [&](PGconn* conn) -> Attempt {
      auto claimed = Claim(conn, key, "X", reason);
      if (!claimed.ok()) return Failed(claimed.status());
      if (!*claimed) return {Attempt::Then::kRollback};  // recorded meanwhile by another copy
      if (Status a = AddStamped(*options_.outbox, conn, *compensation); !a.ok()) return Failed(a);
      return {Attempt::Then::kCommit};
    });
    if (result.kind() == ConsumeResult::Kind::kSuccess) {
      log_->info("message {} of '{}' failed in group '{}' ({}); compensation sent", m.id, m.topic,
                 options_.group, reason);
    }
    return result;
  }

  void MaybeSweep(PGconn* conn) {
    if (Status s = sweeps_.RunIfDue([&](bool* more) { return Sweep(conn, more); }); !s.ok()) {
      log_->warn("removing old records of txmq_inbox failed: {}", s.ToString());
    }
  }

  Result<int64_t> Sweep(PGconn* conn, bool* more) {
    return DeleteOlderThan(conn, "txmq_inbox", "processed_at", options_.horizon, options_.group, "",
                           more);
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

}  // namespace txmq::pg
