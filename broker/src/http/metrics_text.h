// The Prometheus text exposition (format 0.0.4) of a MetricsSnapshot and
// the process's own figures: what GET /metrics returns.
//
// Names follow Prometheus conventions: a txmq_ prefix, base units in the
// name (_seconds, _bytes), _total on counters, histograms as _bucket /
// _sum / _count with cumulative `le` buckets; the process's figures use
// the names every Prometheus client library uses (process_*). Labels:
// topic and queue, group, answer, role, limit (metrics_snapshot.h says why
// their number is bounded). README "Metrics and health" lists every name.
//
// Thread safety: pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "broker/src/cluster/cluster_health.h"
#include "broker/src/http/process_stats.h"
#include "broker/src/metrics_snapshot.h"

namespace txmq::broker::http {

inline constexpr const char* kExpositionContentType = "text/plain; version=0.0.4; charset=utf-8";

// `snapshot`: the broker's figures, null while it does not serve (a
// follower, or still starting). `cluster`: the node's replication group,
// null for a lone broker.
std::string RenderMetrics(const MetricsSnapshot* snapshot, const cluster::ClusterHealth* cluster,
                          const ProcessStats& process);
inline std::string RenderMetrics(const MetricsSnapshot& snapshot, const ProcessStats& process) {
  return RenderMetrics(&snapshot, nullptr, process);
}

// A label value as the exposition writes it between quotes: backslash,
// double quote and line feed escaped.
std::string EscapeLabelValue(std::string_view value);

// Writes one metric family after another: HELP and TYPE once, then its
// samples. Families must not interleave (the format forbids it).
class Exposition {
 public:
  using Labels = std::vector<std::pair<std::string_view, std::string>>;

  // type: "counter", "gauge" or "histogram".
  void Family(std::string_view name, std::string_view type, std::string_view help);
  void Sample(std::string_view name, const Labels& labels, uint64_t value);
  void Sample(std::string_view name, const Labels& labels, double value);
  // A histogram of microsecond latencies, in seconds.
  void Histogram(std::string_view name, const Labels& labels,
                 const storage::LatencyHistogram& histogram);

  const std::string& text() const { return out_; }

 private:
  void Head(std::string_view name, const Labels& labels);
  std::string out_;
};

}  // namespace txmq::broker::http
