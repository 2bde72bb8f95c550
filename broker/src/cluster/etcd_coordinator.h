// The Coordinator over etcd 3.4's JSON gateway (HTTP POST /v3/...).
//
// One endpoint for now (a single etcd, or one member of a cluster that
// forwards to its leader). TODO: a list of endpoints, moving on to the next
// when one cannot be reached.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "broker/src/cluster/coordinator.h"

namespace txmq::cluster {

struct EtcdOptions {
  // etcd's client URL, "http://HOST:PORT" (no TLS yet).
  std::string endpoint = "http://127.0.0.1:2379";
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
