// What a SQL backend's Outbox::Impl keeps of its relay between Start and
// Shutdown, shared by the PostgreSQL and the SQLite outbox: one relay at a
// time, the rows sent by relays already shut down, and the stats a caller
// sees. The backend opens its connections and makes the relay; this class
// runs it.
//
// Thread safety: all methods may be called from any thread; Start and
// Shutdown run one at a time.
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "producer/src/sql/sql_relay.h"
#include "txmq/outbox.h"
#include "txmq/status.h"

namespace txmq::sql {

class RelayHolder {
 public:
  ~RelayHolder() { Shutdown(); }

  // FAILED_PRECONDITION when a relay runs; otherwise the relay `make`
  // returns is started and kept (or `make`'s or Start's error returned).
  Status Start(const std::function<Result<std::unique_ptr<Relay>>()>& make) {
    std::lock_guard<std::mutex> lifecycle(lifecycle_mu_);
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (relay_) return Status::FailedPrecondition("outbox already started");
    }
    auto relay = make();
    if (!relay.ok()) return relay.status();
    if (Status s = (*relay)->Start(); !s.ok()) return s;
    std::lock_guard<std::mutex> lock(mu_);
    relay_ = std::move(*relay);
    return Status::OK();
  }

  void Shutdown() {
    std::lock_guard<std::mutex> lifecycle(lifecycle_mu_);
    std::unique_ptr<Relay> relay;
    {
      std::lock_guard<std::mutex> lock(mu_);
      relay = std::move(relay_);
    }
    if (!relay) return;
    relay->Shutdown();  // outside mu_: it waits for the sends in flight
    std::lock_guard<std::mutex> lock(mu_);
    sent_before_ += relay->sent();
    last_error_ = relay->last_error();
  }

  void Wake() {
    std::lock_guard<std::mutex> lock(mu_);
    if (relay_) relay_->Wake();
  }

  // The table's counts (when known) and the relays' sent and last error.
  OutboxStats Stats(const Result<Counts>& counts) const {
    OutboxStats s;
    if (counts.ok()) {
      s.pending = counts->pending;
      s.parked = counts->parked;
      s.blocked = counts->blocked;
      s.oldest_pending_age = counts->oldest_pending_age;
    }
    std::lock_guard<std::mutex> lock(mu_);
    s.sent = sent_before_ + (relay_ ? relay_->sent() : 0);
    s.last_error = relay_ ? relay_->last_error() : last_error_;
    return s;
  }

 private:
  std::mutex lifecycle_mu_;
  mutable std::mutex mu_;
  std::unique_ptr<Relay> relay_;  // guarded by mu_
  uint64_t sent_before_ = 0;      // guarded by mu_: by relays shut down
  std::string last_error_;        // guarded by mu_
};

}  // namespace txmq::sql
