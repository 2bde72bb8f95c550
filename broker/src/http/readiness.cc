#include "broker/src/http/readiness.h"

#include "protocol/src/byte_size.h"

namespace txmq::broker::http {

Readiness DecideReadiness(bool started,
                          const Result<std::shared_ptr<const MetricsSnapshot>>& snapshot) {
  if (!started) return {false, "starting: recovering the data directory, not serving yet"};
  // The core thread did not answer in time (stuck), or has stopped.
  if (!snapshot.ok()) return {false, snapshot.status().message()};
  const StorageMetrics& storage = (*snapshot)->storage;
  if (storage.failed) {
    return {false, "storage failed, writes are refused and the broker stops: " + storage.failure};
  }
  if (storage.disk_low) {
    return {false, "disk space low: " + FormatBytes(storage.disk_free_bytes) +
                       " free, below --min-free-disk " + FormatBytes(storage.min_free_disk_bytes) +
                       "; new messages are refused until more is free"};
  }
  // A cluster member (issue 11) is ready only while it is in the ISR of
  // its replication group: check the member's state here once the
  // replication layer puts it into the snapshot.
  return {true, "ready"};
}

}  // namespace txmq::broker::http
