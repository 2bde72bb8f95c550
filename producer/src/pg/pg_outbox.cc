#include <thread>

#include "producer/src/pg/pg_library_add.h"
#include "producer/src/pg/pg_outbox_impl.h"
#include "producer/src/pg/pg_schema.h"
#include "protocol/src/util.h"
#include "txmq/names.h"
#include "txmq/properties.h"

namespace txmq::pg {

namespace {

sql::RelayOptions ToRelayOptions(const OutboxOptions& o) {
  return sql::ToRelayOptions(o, "txmq-pg-relay");
}

}  // namespace

Outbox::Impl::Impl(OutboxOptions options) : options_(std::move(options)) {}

Outbox::Impl::~Impl() { Shutdown(); }

Status Outbox::Impl::Start() {
  if (Status s = sql::ValidateRelayOptions(ToRelayOptions(options_), "pg outbox options");
      !s.ok()) {
    return s;
  }
  return relay_.Start([&]() -> Result<std::unique_ptr<sql::Relay>> {
    auto relay_conn = Connection::Open(options_.conninfo);
    if (!relay_conn.ok()) return relay_conn.status();
    if (Status s = MigrateOutbox(relay_conn->get()); !s.ok()) return s;
    if (Status s = PrepareRelayConnection(relay_conn->get()); !s.ok()) return s;
    auto admin_conn = Connection::Open(options_.conninfo);
    if (!admin_conn.ok()) return admin_conn.status();
    auto relay = std::make_unique<sql::Relay>(
        ToRelayOptions(options_),
        MakeRelayTable(options_.conninfo, std::move(*relay_conn), options_.hold_key_behind_parked));
    if (auto counts = CountRows(admin_conn->get()); counts.ok()) {
      Logger("outbox")->info(
          "pg outbox relay {} on database '{}': {} rows pending ({} behind parked rows), {} "
          "parked",
          relay->instance(), PQdb(admin_conn->get()), counts->pending, counts->blocked,
          counts->parked);
    }
    std::lock_guard<std::mutex> lock(mu_);
    admin_conn_ = std::move(*admin_conn);
    return relay;
  });
}

void Outbox::Impl::Shutdown() { relay_.Shutdown(); }

Status Outbox::Impl::Add(PGconn* conn, Message message) {
  if (Status s = ValidateSendTopic(message.topic); !s.ok()) return s;
  if (message.id.empty()) message.id = NewUuidV7();
  // Who sent it, so a consumer can address a compensation back.
  message.properties[property::kProducerGroup] = options_.producer.group;
  return InsertRow(conn, message, options_.notify_on_add);
}

Result<Counts> Outbox::Impl::Count() const {
  std::lock_guard<std::mutex> lock(mu_);
  if (admin_conn_.broken()) {
    auto c = Connection::Open(options_.conninfo);
    if (!c.ok()) return c.status();
    admin_conn_ = std::move(*c);
  }
  return CountRows(admin_conn_.get());
}

Status Outbox::Impl::Flush(std::chrono::milliseconds timeout) {
  return sql::WaitUntilFlushed([this] { return Count(); }, options_.hold_key_behind_parked,
                               timeout);
}

OutboxStats Outbox::Impl::stats() const {
  // Only on an open connection: stats never waits on a connect.
  std::unique_lock<std::mutex> lock(mu_);
  const bool open = !admin_conn_.broken();
  lock.unlock();
  return relay_.Stats(open ? Count() : Result<Counts>(Status::Unavailable("not connected")));
}

Outbox::Outbox(OutboxOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {}
Outbox::~Outbox() = default;
Status Outbox::Start() { return impl_->Start(); }
void Outbox::Shutdown() { impl_->Shutdown(); }
Status Outbox::Add(pg_conn* conn, Message message) {
  if (Status s = property::CheckUserProperties(message.properties); !s.ok()) return s;
  return impl_->Add(conn, std::move(message));
}

Status AddStamped(Outbox& outbox, PGconn* conn, Message message) {
  return outbox.impl().Add(conn, std::move(message));
}
Status Outbox::Flush(std::chrono::milliseconds timeout) { return impl_->Flush(timeout); }
OutboxStats Outbox::stats() const { return impl_->stats(); }
Status Outbox::Migrate(pg_conn* conn) { return MigrateOutbox(conn); }
Result<std::vector<OutboxRow>> Outbox::List(pg_conn* conn, bool parked) {
  return ListRows(conn, parked);
}
Status Outbox::Requeue(pg_conn* conn, const std::string& id, const std::string& operator_name) {
  return RequeueRow(conn, id, operator_name);
}
Status Outbox::Delete(pg_conn* conn, const std::string& id, const std::string& operator_name) {
  return DeleteRow(conn, id, true, operator_name);
}

}  // namespace txmq::pg
