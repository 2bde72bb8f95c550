// Whether the broker is ready to serve (GET /readyz), decided from what
// the HTTP thread knows: whether the broker finished starting, and the
// latest snapshot of its state (or why there is none).
//
// Ready: recovery finished, the core thread answers, storage has not
// failed and the disk is above the watermark. Not ready otherwise, with a
// reason an operator can act on.
//
// A member of a replicated group is ready while it is in its group's ISR:
// a follower there holds every acknowledged entry and answers clients
// with the leader's address; the leader must also serve and have an ISR
// of at least --min-isr (below it no send is acknowledged). /healthz (alive) does not look at any
// of this: it answers 200 while the process serves HTTP.
//
// Thread safety: a pure function.
#pragma once

#include <memory>
#include <string>

#include "broker/src/cluster/cluster_health.h"
#include "broker/src/metrics_snapshot.h"
#include "txmq/status.h"

namespace txmq::broker::http {

struct Readiness {
  bool ready = false;
  std::string reason;  // one line, for the response body and the log
};

// `started`: Broker::Start returned (recovery done, the socket bound).
// `snapshot`: Broker::Metrics's answer (ignored until started).
// `cluster`: the group as this node last saw it; null for a lone broker.
Readiness DecideReadiness(bool started,
                          const Result<std::shared_ptr<const MetricsSnapshot>>& snapshot,
                          const cluster::ClusterHealth* cluster = nullptr);

}  // namespace txmq::broker::http
