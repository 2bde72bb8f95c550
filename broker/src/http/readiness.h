// Whether the broker is ready to serve (GET /readyz), decided from what
// the HTTP thread knows: whether the broker finished starting, and the
// latest snapshot of its state (or why there is none).
//
// Ready: recovery finished, the core thread answers, storage has not
// failed and the disk is above the watermark. Not ready otherwise, with a
// reason an operator can act on. /healthz (alive) does not look at any of
// this: it answers 200 while the process serves HTTP.
//
// Thread safety: a pure function.
#pragma once

#include <memory>
#include <string>

#include "broker/src/metrics_snapshot.h"
#include "txmq/status.h"

namespace txmq::broker::http {

struct Readiness {
  bool ready = false;
  std::string reason;  // one line, for the response body and the log
};

// `started`: Broker::Start returned (recovery done, the socket bound).
// `snapshot`: Broker::Metrics's answer (ignored until started).
Readiness DecideReadiness(bool started,
                          const Result<std::shared_ptr<const MetricsSnapshot>>& snapshot);

}  // namespace txmq::broker::http
