// The Coordinator over etcd 3.4's JSON gateway (HTTP POST /v3/...).
//
// Several endpoints (the members of one etcd cluster): a call goes to the
// member that answered last. One that cannot be connected to (nothing was
// sent) is skipped for the next within the same call; one that was reached
// and failed (no answer in time, no leader) fails the call, whose outcome
// may be unknown, and the next call starts at the next member.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "broker/src/cluster/coordinator.h"

namespace txmq::cluster {

struct EtcdOptions {
  // etcd's client URLs, "http://HOST:PORT" (no TLS yet): one etcd, or the
  // members of one etcd cluster.
  std::vector<std::string> endpoints{"http://127.0.0.1:2379"};
  // Bound on opening the TCP connection; past it the call fails with
  // kUnavailable (nothing was sent).
  std::chrono::milliseconds connect_timeout{1000};
  // Bound on the whole call, connection included; past it the call fails
  // with kTimeout (a write may or may not have happened).
  std::chrono::milliseconds request_timeout{3000};
};

// Checks the options (kInvalidArgument naming the field); does not contact
// etcd, so it succeeds while etcd is down.
Result<std::unique_ptr<Coordinator>> OpenEtcdCoordinator(const EtcdOptions& options);

}  // namespace txmq::cluster
