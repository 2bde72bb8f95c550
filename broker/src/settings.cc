#include "broker/src/settings.h"

#include <algorithm>

namespace txmq::broker {

namespace {

// The largest unit that divides `d` exactly, as txmqd's flags take it.
std::string Duration(std::chrono::milliseconds d) {
  const int64_t ms = d.count();
  if (ms != 0 && ms % 3'600'000 == 0) return std::to_string(ms / 3'600'000) + "h";
  if (ms != 0 && ms % 60'000 == 0) return std::to_string(ms / 60'000) + "m";
  if (ms % 1000 == 0) return std::to_string(ms / 1000) + "s";
  return std::to_string(ms) + "ms";
}

std::string Backoff(const std::vector<std::chrono::milliseconds>& waits) {
  std::string out;
  for (const auto& w : waits) out += (out.empty() ? "" : ",") + Duration(w);
  return out;
}

std::string Bool(bool b) { return b ? "true" : "false"; }

// In the largest binary unit that divides `bytes` exactly, as --min-free-disk takes it.
std::string Size(uint64_t bytes) {
  if (bytes != 0 && bytes % (1ull << 30) == 0) return std::to_string(bytes >> 30) + "GiB";
  if (bytes != 0 && bytes % (1ull << 20) == 0) return std::to_string(bytes >> 20) + "MiB";
  return std::to_string(bytes);
}

std::string StuckPolicyName(StuckPolicy p) {
  switch (p) {
    case StuckPolicy::kPark:
      return "park";
    case StuckPolicy::kRollback:
      return "rollback";
    case StuckPolicy::kCommit:
      return "commit";
  }
  return "park";
}

}  // namespace

std::vector<std::pair<std::string, std::string>> EffectiveSettings(const BrokerOptions& o) {
  using std::to_string;
  return {
      {"name", o.name},
      {"listen", o.listen},
      {"max-connections", o.max_connections == 0 ? "0 (ulimit -n less descriptors in use)"
                                                 : to_string(o.max_connections)},
      {"max-connections-per-principal", to_string(o.max_connections_per_principal)},
      {"data-dir", o.data_dir},
      {"flush", o.flush == FlushMode::kSync ? "sync" : "async"},
      {"queues", to_string(o.default_queues)},
      {"no-auto-create-topics", Bool(!o.auto_create_topics)},
      {"max-message-bytes", to_string(o.max_message_bytes)},
      {"dedup-window", Duration(o.dedup_window)},
      {"retention", Duration(o.retention)},
      {"visibility-timeout", Duration(o.default_visibility_timeout)},
      {"max-reconsume-times", to_string(o.max_reconsume_times)},
      {"retry-backoff", Backoff(o.retry_backoff)},
      {"client-timeout", Duration(o.client_timeout)},
      {"transaction-timeout", Duration(o.transaction_timeout)},
      {"check-interval", Duration(o.check_interval)},
      {"check-interval-max", Duration(o.check_interval_max)},
      {"check-max", to_string(o.check_max)},
      {"check-timeout", Duration(o.check_timeout)},
      {"stuck-policy", StuckPolicyName(o.stuck_policy)},
      {"checks-per-second", to_string(o.checks_per_second)},
      {"resolved-retention", Duration(o.resolved_retention)},
      {"segment-mb", to_string(o.segment_bytes >> 20)},
      {"cached-log-mb", to_string(o.cached_log_bytes >> 20)},
      {"write-buffer-mb", to_string(o.write_buffer_bytes >> 20)},
      {"index-overlay-mb", to_string(o.index_overlay_bytes >> 20)},
      {"table-file-mb", to_string(o.table_file_bytes >> 20)},
      {"curve-secret-key", o.curve_secret_key_file.empty() ? "-" : o.curve_secret_key_file},
      {"acl", o.acl_file.empty() ? "-" : o.acl_file},
      {"insecure", Bool(o.insecure)},
      {"min-free-disk", Size(EffectiveMinFreeDisk(o))},
      {"verify-on-start", o.verify_storage_at_start ? "all" : "recent"},
      {"repair", Bool(o.repair)},
      {"max-reply-bytes-per-client", to_string(o.max_reply_bytes_per_client)},
      {"max-reply-bytes", to_string(o.max_reply_bytes)},
      {"max-parked-pulls-per-client", to_string(o.max_parked_pulls_per_client)},
      {"max-parked-pulls", to_string(o.max_parked_pulls)},
      {"max-in-flight-per-client", to_string(o.max_in_flight_per_client)},
      {"max-open-transactions-per-group", to_string(o.max_open_transactions_per_group)},
      {"max-open-transactions", to_string(o.max_open_transactions)},
      {"max-topics", to_string(o.max_topics)},
      {"topic-creates-per-second", to_string(o.topic_creates_per_second)},
      {"max-groups", to_string(o.max_groups)},
      {"group-creates-per-second", to_string(o.group_creates_per_second)},
      {"max-topics-per-principal", to_string(o.max_topics_per_principal)},
      {"topic-creates-per-second-per-principal",
       to_string(o.topic_creates_per_second_per_principal)},
      {"max-groups-per-principal", to_string(o.max_groups_per_principal)},
      {"group-creates-per-second-per-principal",
       to_string(o.group_creates_per_second_per_principal)},
      // Not flags (yet): fixed limits, shown so nothing effective is hidden.
      {"max-long-poll", Duration(o.max_long_poll)},
      {"max-delay", Duration(o.max_delay)},
      {"max-pull-messages", to_string(o.max_pull_messages)},
      {"cleanup-interval", Duration(o.cleanup_interval)},
      {"cleanup-batch", to_string(o.cleanup_batch)},
  };
}

std::string SettingsBlock(const std::vector<std::pair<std::string, std::string>>& settings) {
  size_t width = 0;
  for (const auto& [name, value] : settings) width = std::max(width, name.size());
  std::string out;
  for (const auto& [name, value] : settings) {
    out += "\n  " + name + std::string(width - name.size() + 2, ' ') + value;
  }
  return out;
}

}  // namespace txmq::broker
