#include "broker/src/http/readiness.h"

#include "protocol/src/byte_size.h"

namespace txmq::broker::http {

namespace {

std::string Joined(const std::vector<std::string>& names) {
  std::string out;
  for (const std::string& n : names) out += (out.empty() ? "" : ",") + n;
  return out.empty() ? "-" : out;
}

std::string LeaderOf(const cluster::ClusterHealth& c) {
  return c.leader_url.empty() ? "an unknown leader (election running)"
                              : "the leader at " + c.leader_url;
}

}  // namespace

Readiness DecideReadiness(bool started,
                          const Result<std::shared_ptr<const MetricsSnapshot>>& snapshot,
                          const cluster::ClusterHealth* cluster) {
  std::string role;
  if (cluster != nullptr) {
    const cluster::ClusterHealth& c = *cluster;
    const std::string where =
        "group " + c.group + " (epoch " + std::to_string(c.epoch) + ", ISR " + Joined(c.isr) + ")";
    if (!c.InIsr()) {
      if (c.epoch == 0) {
        return {false, "joining group " + c.group + ": no group record read from etcd yet" +
                           (c.coordinator_error.empty() ? "" : " (" + c.coordinator_error + ")")};
      }
      return {false, "not in the ISR of " + where + ": catching up from " + LeaderOf(c) +
                         ", replica log at index " + std::to_string(c.last_index)};
    }
    if (!c.leading) {
      return {true,
              "ready: follower in the ISR of " + where + ", clients are sent to " + LeaderOf(c)};
    }
    if (!started) {
      return {false, "starting: leads " + where +
                         ", committing its epoch and rebuilding the store from the replica log"};
    }
    if (c.isr.size() < c.min_isr) {
      return {false, "leads " + where + " but the ISR is below --min-isr " +
                         std::to_string(c.min_isr) +
                         ": sends wait unacknowledged until a follower catches up"};
    }
    role = ": leads " + where;
  }
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
  return {true, "ready" + role};
}

}  // namespace txmq::broker::http
