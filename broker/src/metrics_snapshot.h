// What the broker's metrics are at one moment: plain values, copied out of
// the core thread's state by MetricsCollector (metrics_collector.h) and
// handed to other threads (the HTTP endpoint, http/http_server.h) through
// a SnapshotMailbox (snapshot_mailbox.h). Nothing in it points back into
// the broker, so a snapshot may be read on any thread for as long as it is
// held.
//
// Counters named "since start" begin at 0 when txmqd starts (Prometheus
// takes a counter that goes down as a restart). Counts taken from offsets
// (messages in) survive restarts.
//
// Label cardinality: one entry per queue of each topic (bounded by
// --max-topics and 1024 queues a topic), per consumer group and topic it
// reads (--max-groups x its subscriptions), per producer group (those with
// open transactions, bounded by --max-open-transactions, plus at most
// kMaxProducerGroupsTracked others with totals; beyond that their totals
// are summed under kOtherProducerGroups).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "storage/src/latency_histogram.h"

namespace txmq::broker {

struct QueueMetrics {
  std::string topic;
  uint32_t queue = 0;
  uint64_t messages_in = 0;  // durable offsets ever assigned (visible end)
  uint64_t bytes_in = 0;     // message body bytes appended, since start
  uint64_t backlog = 0;      // stored messages: visible end less first stored offset
  // Age of the oldest stored message; -1 when the queue stores none (or
  // the message there cannot be read).
  int64_t oldest_age_ms = -1;
  // Age of the oldest message a group reading the topic has not finished
  // (the lowest cursor floor of those groups); -1 when every group is done
  // with what is stored, or no group reads the topic.
  int64_t oldest_unconsumed_age_ms = -1;
};

struct GroupTopicMetrics {
  std::string topic;
  uint64_t lag = 0;        // stored, visible messages not yet finished by the group
  uint64_t in_flight = 0;  // leases out on the topic's queues (not counting redeliveries)
};

struct GroupMetrics {
  std::string name;
  std::vector<GroupTopicMetrics> topics;
  uint64_t in_flight = 0;               // every lease of the group, redeliveries too
  uint64_t redeliveries_scheduled = 0;  // retry entries waiting or leased
  uint64_t dead_lettered = 0;           // since start
  uint64_t expired = 0;                 // retention deleted before the group got them, since start
};

// Check answers, indexed by storage::CheckAnswerCode (kNone unused).
inline constexpr std::array<const char*, 7> kCheckAnswerNames = {
    "none", "commit", "rollback", "unknown", "error", "no_answer", "no_producer"};

struct ProducerGroupMetrics {
  std::string name;
  uint64_t open = 0;
  uint64_t stuck = 0;
  uint64_t committed = 0;    // since start
  uint64_t rolled_back = 0;  // since start
  uint64_t checks_sent = 0;  // since start
  std::array<uint64_t, kCheckAnswerNames.size()> answers{};
  storage::LatencyHistogram check_latency;  // check sent -> its answer, since start
};
inline constexpr size_t kMaxProducerGroupsTracked = 1000;
inline constexpr const char* kOtherProducerGroups = "(other)";

struct StorageMetrics {
  uint64_t rounds = 0;       // rounds written (each one write, one fsync with --flush sync)
  uint64_t completions = 0;  // requests those rounds made durable
  uint64_t bytes_written = 0;
  uint64_t checkpoints = 0;
  uint64_t damaged_records = 0;
  storage::LatencyHistogram round_write;  // write + fsync + index update of a round
  storage::LatencyHistogram fsync;        // the fdatasync alone (--flush sync)
  uint64_t disk_free_bytes = 0;
  uint64_t min_free_disk_bytes = 0;  // 0: the watermark is off
  bool disk_low = false;
  bool failed = false;
  std::string failure;  // why, when failed
};

struct LimitMetrics {
  std::string name;  // the txmqd flag without "--"
  uint64_t limit = 0;
  uint64_t used = 0;
  uint64_t refused = 0;
};

struct BrokerCounters {
  uint64_t messages_stored = 0;  // since start
  uint64_t duplicates = 0;
  uint64_t delivered = 0;
  uint64_t acked = 0;
  uint64_t redeliveries_scheduled = 0;
  uint64_t dead_lettered = 0;
  uint64_t expired_unconsumed = 0;
  uint64_t bad_frames = 0;
  uint64_t dropped_replies = 0;
  uint64_t halves_stored = 0;
};

struct MetricsSnapshot {
  std::string broker_name;
  std::string version;
  int64_t taken_ms = 0;  // broker time
  int64_t uptime_ms = 0;
  BrokerCounters counters;
  uint64_t producers = 0;  // registered clients by role
  uint64_t consumers = 0;
  uint64_t admins = 0;
  std::vector<QueueMetrics> queues;
  std::vector<GroupMetrics> groups;
  std::vector<ProducerGroupMetrics> producer_groups;
  StorageMetrics storage;
  std::vector<LimitMetrics> limits;
};

}  // namespace txmq::broker
