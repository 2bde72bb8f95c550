#include "broker/src/cluster/node_lease.h"

#include <utility>

namespace txmq::cluster {

NodeLease::NodeLease(Coordinator& coordinator, std::string key, std::string value,
                     std::chrono::seconds ttl)
    : coordinator_(coordinator),
      key_(std::move(key)),
      value_(std::move(value)),
      requested_ttl_(ttl) {}

Status NodeLease::Tick(Clock::time_point now) {
  if (lease_.id != 0) {
    auto kept = coordinator_.KeepAlive(lease_.id);
    if (kept.ok()) {
      confirmed_at_ = now;
      lease_.ttl = *kept;
    } else if (kept.status().code() == StatusCode::kNotFound) {
      // Ended in the store, and its key with it: start over below.
      lease_ = Lease{};
      key_revision_ = 0;
    } else {
      return kept.status();
    }
  }
  if (lease_.id == 0) {
    auto granted = coordinator_.GrantLease(requested_ttl_);
    if (!granted.ok()) return granted.status();
    lease_ = *granted;
    confirmed_at_ = now;
  }
  if (key_revision_ == 0) {
    // A put rather than a create-if-absent: after a restart the key may
    // still be there under the previous process's lease, which then ends
    // by itself holding no key.
    auto put = coordinator_.Put(key_, value_, lease_.id);
    if (!put.ok()) {
      // kNotFound: the lease ended between grant and put; the next Tick
      // learns it from the keep-alive and starts over.
      return put.status();
    }
    key_revision_ = *put;
  }
  return Status::OK();
}

Status NodeLease::Revoke() {
  if (lease_.id == 0) return Status::OK();
  Status s = coordinator_.RevokeLease(lease_.id);
  if (!s.ok() && s.code() != StatusCode::kNotFound) return s;
  lease_ = Lease{};
  key_revision_ = 0;
  return Status::OK();
}

bool NodeLease::Held(Clock::time_point now) const {
  return lease_.id != 0 && now < confirmed_at_ + lease_.ttl;
}

}  // namespace txmq::cluster
