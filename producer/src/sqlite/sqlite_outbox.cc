// sqlite::Outbox (see txmq/sqlite/outbox.h): the calls users make. The relay
// is sql::Relay over the SQLite statements of sqlite_outbox_table.h.
#include <thread>

#include "producer/src/sql/origin_check.h"
#include "producer/src/sql/relay_holder.h"
#include "producer/src/sql/sql_relay.h"
#include "producer/src/sqlite/sqlite_db.h"
#include "producer/src/sqlite/sqlite_library_add.h"
#include "producer/src/sqlite/sqlite_outbox_table.h"
#include "producer/src/sqlite/sqlite_schema.h"
#include "protocol/src/util.h"
#include "txmq/names.h"
#include "txmq/properties.h"

namespace txmq::sqlite {

namespace {

// The relay's handle on the database file.
class RelayTable : public sql::RelayTable {
 public:
  RelayTable(std::string path, std::chrono::milliseconds busy_timeout, bool hold_key_behind_parked)
      : path_(std::move(path)),
        busy_timeout_(busy_timeout),
        hold_key_behind_parked_(hold_key_behind_parked) {}

  Status Connect() override {
    if (db_) return Status::OK();
    auto d = Database::Open(path_, busy_timeout_, false);
    if (!d.ok()) return d.status();
    db_ = std::move(*d);
    return Status::OK();
  }
  bool broken() const override { return !db_; }
  Result<std::vector<sql::ClaimedRow>> Claim(const std::string& owner,
                                             std::chrono::milliseconds lease, int limit,
                                             bool hold) override {
    return ClaimDue(db_.get(), owner, lease, limit, hold);
  }
  Result<bool> MarkSent(const std::string& id, int64_t fence) override {
    return sqlite::MarkSent(db_.get(), id, fence);
  }
  Result<bool> MarkFailed(const std::string& id, int64_t fence, bool park,
                          std::chrono::milliseconds retry_in, const std::string& error) override {
    return sqlite::MarkFailed(db_.get(), id, fence, park, retry_in, error);
  }
  Status Release(const std::string& owner) override { return ReleaseClaims(db_.get(), owner); }
  Status RestartOriginHorizon(const std::vector<std::string>& ids) override {
    return sqlite::RestartOriginHorizon(db_.get(), ids);
  }
  Result<int64_t> RemoveExpiredOrigins(std::chrono::milliseconds horizon, bool* more) override {
    return DeleteOlderThan(db_.get(), "txmq_origin", "recorded_at", horizon, "",
                           sql::kOriginStillInOutbox, more);
  }
  Result<std::chrono::milliseconds> NextDueIn() override {
    return sqlite::NextDueIn(db_.get(), hold_key_behind_parked_);
  }
  std::string where() const override { return "SQLite database '" + path_ + "'"; }
  std::string ctl_flag() const override { return "--sqlite '" + path_ + "'"; }

 private:
  const std::string path_;
  const std::chrono::milliseconds busy_timeout_;
  const bool hold_key_behind_parked_;
  Database db_;
};

sql::RelayOptions ToRelayOptions(const OutboxOptions& o) {
  return sql::ToRelayOptions(o, "txmq-sqlite-rly");
}

}  // namespace

class Outbox::Impl {
 public:
  explicit Impl(OutboxOptions options) : options_(std::move(options)) {}

  Status Start() {
    if (options_.path.empty()) return Status::InvalidArgument("sqlite outbox: path is empty");
    if (Status s = sql::ValidateRelayOptions(ToRelayOptions(options_), "sqlite outbox options");
        !s.ok()) {
      return s;
    }
    return relay_.Start([&]() -> Result<std::unique_ptr<sql::Relay>> {
      auto admin = Database::Open(options_.path, options_.busy_timeout);
      if (!admin.ok()) return admin.status();
      if (Status s = MigrateOutbox(admin->get()); !s.ok()) return s;
      auto table = std::make_unique<RelayTable>(options_.path, options_.busy_timeout,
                                                options_.hold_key_behind_parked);
      if (Status s = table->Connect(); !s.ok()) return s;
      auto relay = std::make_unique<sql::Relay>(ToRelayOptions(options_), std::move(table));
      if (auto counts = CountRows(admin->get()); counts.ok()) {
        Logger("outbox")->info(
            "sqlite outbox relay {} on '{}': {} rows pending ({} behind parked rows), {} parked",
            relay->instance(), options_.path, counts->pending, counts->blocked, counts->parked);
      }
      std::lock_guard<std::mutex> lock(mu_);
      admin_ = std::move(*admin);
      return relay;
    });
  }

  void Shutdown() { relay_.Shutdown(); }

  Status Add(sqlite3* db, Message message) {
    if (Status s = ValidateSendTopic(message.topic); !s.ok()) return s;
    if (message.id.empty()) message.id = NewUuidV7();
    // Who sent it, so a consumer can address a compensation back.
    message.properties[property::kProducerGroup] = options_.producer.group;
    if (Status s = InsertRow(db, message); !s.ok()) return s;
    // No NOTIFY on SQLite. The row is visible once the caller commits; the
    // woken relay's claim waits for that commit on the write lock (or
    // finds nothing and polls).
    relay_.Wake();
    return Status::OK();
  }

  Status Flush(std::chrono::milliseconds timeout) {
    return sql::WaitUntilFlushed([this] { return Count(); }, options_.hold_key_behind_parked,
                                 timeout);
  }

  OutboxStats stats() const { return relay_.Stats(Count()); }

 private:
  Result<Counts> Count() const {
    std::lock_guard<std::mutex> lock(mu_);
    if (!admin_) {
      auto d = Database::Open(options_.path, options_.busy_timeout, false);
      if (!d.ok()) return d.status();
      admin_ = std::move(*d);
    }
    return CountRows(admin_.get());
  }

  const OutboxOptions options_;
  mutable std::mutex mu_;
  mutable Database admin_;  // guarded by mu_: Flush and stats
  sql::RelayHolder relay_;
};

Outbox::Outbox(OutboxOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {}
Outbox::~Outbox() = default;
Status Outbox::Start() { return impl_->Start(); }
void Outbox::Shutdown() { impl_->Shutdown(); }
Status Outbox::Add(sqlite3* db, Message message) {
  if (Status s = property::CheckUserProperties(message.properties); !s.ok()) return s;
  return impl_->Add(db, std::move(message));
}
Status AddStamped(Outbox& outbox, sqlite3* db, Message message) {
  return outbox.impl().Add(db, std::move(message));
}
Status Outbox::Flush(std::chrono::milliseconds timeout) { return impl_->Flush(timeout); }
OutboxStats Outbox::stats() const { return impl_->stats(); }
Status Outbox::Migrate(sqlite3* db) { return MigrateOutbox(db); }
Result<std::vector<OutboxRow>> Outbox::List(sqlite3* db, bool parked) {
  return ListRows(db, parked);
}
Status Outbox::Requeue(sqlite3* db, const std::string& id, const std::string& operator_name) {
  return RequeueRow(db, id, operator_name);
}
Status Outbox::Delete(sqlite3* db, const std::string& id, const std::string& operator_name) {
  return DeleteRow(db, id, true, operator_name);
}

}  // namespace txmq::sqlite
