// A broker's liveness in the coordination store: one key bound to a lease
// that the owner keeps alive by calling Tick().
//
// The key says "this node seemed alive lately" and nothing stronger: etcd
// restarts a lease's TTL when its own leader changes (etcd #9395) and a
// paused process does not know its lease ran out. Others use the key's
// absence to start an election, which revisions then fence; the node
// itself uses Held() to stop claiming leadership once its lease could have
// ended.
//
// Thread safety: none; one owner calls every method (GroupMember does).
#pragma once

#include <chrono>
#include <string>

#include "broker/src/cluster/coordinator.h"

namespace txmq::cluster {

using Clock = std::chrono::steady_clock;

class NodeLease {
 public:
  // `coordinator` must outlive this object. Nothing is contacted before
  // the first Tick().
  NodeLease(Coordinator& coordinator, std::string key, std::string value, std::chrono::seconds ttl);
  NodeLease(const NodeLease&) = delete;
  NodeLease& operator=(const NodeLease&) = delete;

  // Keeps the lease alive; when it has ended (kNotFound: expired or
  // revoked, its key gone) grants a new one and puts the key again. `now`
  // must be read before the call: a keep-alive counts from when it was
  // sent. Returns the store's error (kUnavailable, kTimeout) and keeps what
  // it had; the next Tick retries.
  Status Tick(Clock::time_point now);

  // Makes the next Tick put the key again: a conditional write that
  // compared key_revision() failed, so the key may have been deleted while
  // the lease lives on.
  void RegisterAgain() { key_revision_ = 0; }

  // Ends the lease now, so the key disappears at once (a clean shutdown
  // hands over leadership without waiting for the TTL).
  Status Revoke();

  // The lease was granted or kept alive less than a TTL before `now`: the
  // store cannot have ended it yet (by the node's clock, which is all it
  // has; see the file comment).
  bool Held(Clock::time_point now) const;
  // Held and the key is written with it: others see this node alive.
  bool Registered(Clock::time_point now) const { return Held(now) && key_revision_ != 0; }

  // The current lease; 0 when none. A new id means the old lease ended.
  LeaseId id() const { return lease_.id; }
  // The key's mod revision as this node wrote it; a transaction compares it
  // to make sure the node is still registered under this lease. 0: not
  // registered.
  Revision key_revision() const { return key_revision_; }
  const std::string& key() const { return key_; }

 private:
  Coordinator& coordinator_;
  const std::string key_;
  const std::string value_;
  const std::chrono::seconds requested_ttl_;
  Lease lease_;                     // id 0: none
  Clock::time_point confirmed_at_;  // when the last grant or keep-alive was sent
  Revision key_revision_ = 0;
};

}  // namespace txmq::cluster
