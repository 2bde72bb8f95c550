#include "broker/src/metrics_collector.h"

#include <algorithm>

#include "broker/src/disk_watermark.h"
#include "txmq/version.h"

namespace txmq::broker {

namespace {
// Offsets tried past a queue's start for a readable message (an offset
// may have been taken out by a repair or a topic's damage).
constexpr uint64_t kOldestProbe = 8;
}  // namespace

MetricsSnapshot MetricsCollector::Collect() {
  MetricsSnapshot out;
  const BrokerOptions& o = core_.options();
  out.broker_name = o.name;
  out.version = kVersion;
  out.taken_ms = core_.NowMs();
  out.uptime_ms = out.taken_ms - info_.started_ms;
  const Counters& c = core_.counters();
  out.counters.messages_stored = c.messages_stored;
  out.counters.duplicates = c.duplicates;
  out.counters.delivered = c.delivered;
  out.counters.acked = c.acked;
  out.counters.redeliveries_scheduled = c.redelivery_scheduled;
  out.counters.dead_lettered = c.dead_lettered;
  out.counters.expired_unconsumed = c.expired_unconsumed;
  out.counters.bad_frames = c.bad_frames;
  out.counters.dropped_replies = c.dropped_replies;
  out.counters.halves_stored = transactions_.stats().halves_stored;
  out.producers = clients_.Count(wire::Role::PRODUCER);
  out.consumers = clients_.Count(wire::Role::CONSUMER);
  out.admins = clients_.Count(wire::Role::ADMIN);
  CollectQueues(out);
  CollectGroups(out);
  CollectProducerGroups(out);
  CollectStorage(out);
  for (const Limits::Use& use :
       core_.limits().Report(CountLimits(topics_, groups_, transactions_, info_))) {
    out.limits.push_back({use.name, use.limit, use.used, use.refused});
  }
  return out;
}

void MetricsCollector::CollectQueues(MetricsSnapshot& out) {
  decltype(oldest_) still_there;
  decltype(unconsumed_) still_unconsumed;
  for (const auto& [name, topic] : topics_.all()) {
    for (uint32_t q = 0; q < topic.queues.size(); ++q) {
      const QueueState& qs = topic.queues[q];
      QueueMetrics m;
      m.topic = name;
      m.queue = q;
      m.messages_in = qs.visible_end;
      m.bytes_in = qs.bytes_in;
      m.backlog = qs.visible_end > qs.min_offset ? qs.visible_end - qs.min_offset : 0;
      if (m.backlog > 0) {
        const auto key = std::make_pair(topic.id, q);
        auto known = oldest_.find(key);
        std::optional<int64_t> stored_ms;
        if (known != oldest_.end() && known->second.first == qs.min_offset) {
          stored_ms = known->second.second;
        } else {
          stored_ms = OldestStoredMs(topic, q);
        }
        if (stored_ms) {
          still_there[key] = {qs.min_offset, *stored_ms};
          m.oldest_age_ms = std::max<int64_t>(0, out.taken_ms - *stored_ms);
        }
      }
      // The oldest message some group reading the topic has not finished.
      if (const auto* readers = groups_.ReadersOf(name); readers != nullptr && m.backlog > 0) {
        uint64_t lowest = qs.visible_end;
        for (const GroupState* g : *readers) {
          auto sub = g->subscriptions.find(name);
          if (sub == g->subscriptions.end() || q >= sub->second.queues.size()) continue;
          lowest = std::min(lowest, std::max(sub->second.queues[q].floor(), qs.min_offset));
        }
        if (lowest < qs.visible_end) {
          const auto key = std::make_pair(topic.id, q);
          auto known = unconsumed_.find(key);
          std::optional<int64_t> stored_ms;
          if (known != unconsumed_.end() && known->second.first == lowest) {
            stored_ms = known->second.second;
          } else {
            stored_ms = StoredMsAt(topic, q, lowest);
          }
          if (stored_ms) {
            still_unconsumed[key] = {lowest, *stored_ms};
            m.oldest_unconsumed_age_ms = std::max<int64_t>(0, out.taken_ms - *stored_ms);
          }
        }
      }
      out.queues.push_back(std::move(m));
    }
  }
  oldest_ = std::move(still_there);
  unconsumed_ = std::move(still_unconsumed);
}

std::optional<int64_t> MetricsCollector::OldestStoredMs(const TopicState& topic, uint32_t queue) {
  return StoredMsAt(topic, queue, topic.queues[queue].min_offset);
}

std::optional<int64_t> MetricsCollector::StoredMsAt(const TopicState& topic, uint32_t queue,
                                                    uint64_t offset) {
  const QueueState& qs = topic.queues[queue];
  const uint64_t end = std::min(qs.visible_end, offset + kOldestProbe);
  for (uint64_t at = offset; at < end; ++at) {
    if (auto m = core_.store().ReadMessage(topic.id, queue, at); m.ok()) {
      return m->body.message.stored_ms;
    }
  }
  return std::nullopt;
}

void MetricsCollector::CollectGroups(MetricsSnapshot& out) {
  for (const auto& [name, g] : groups_.all()) {
    GroupMetrics m;
    m.name = name;
    for (const auto& [topic_name, sub] : g.subscriptions) {
      GroupTopicMetrics t;
      t.topic = topic_name;
      const TopicState* topic = topics_.Find(topic_name);
      for (uint32_t q = 0; q < sub.queues.size(); ++q) {
        const QueueCursor& cursor = sub.queues[q];
        t.in_flight += cursor.leased.size();
        // As txmqctl group show counts it: what retention deleted is not
        // lag (it is counted as expired).
        if (topic == nullptr || q >= topic->queues.size()) continue;
        const QueueState& qs = topic->queues[q];
        const uint64_t floor = std::max(cursor.floor(), qs.min_offset);
        t.lag += qs.visible_end > floor ? qs.visible_end - floor : 0;
      }
      m.in_flight += t.in_flight;
      m.topics.push_back(std::move(t));
    }
    for (const auto& [id, retry] : g.retries) m.in_flight += retry.lease.has_value();
    m.redeliveries_scheduled = g.retries.size();
    m.dead_lettered = g.dead_lettered;
    m.expired = g.expired;
    out.groups.push_back(std::move(m));
  }
}

void MetricsCollector::CollectProducerGroups(MetricsSnapshot& out) {
  std::map<std::string, ProducerGroupMetrics, std::less<>> by_name;
  for (const auto& [name, stats] : transactions_.group_stats()) {
    ProducerGroupMetrics& m = by_name[name];
    m.committed = stats.committed;
    m.rolled_back = stats.rolled_back;
    m.checks_sent = stats.checks_sent;
    std::copy(std::begin(stats.answers), std::end(stats.answers), m.answers.begin());
    m.check_latency = stats.check_latency;
  }
  // Open transactions are bounded by --max-open-transactions, so their
  // groups are too: each gets its own series, tracked totals or not.
  for (const auto& [id, tx] : transactions_.open()) {
    ProducerGroupMetrics& m = by_name[tx.record.group];
    m.open++;
    m.stuck += tx.record.stuck;
  }
  for (auto& [name, m] : by_name) {
    m.name = name;
    out.producer_groups.push_back(std::move(m));
  }
}

void MetricsCollector::CollectStorage(MetricsSnapshot& out) {
  StorageMetrics& s = out.storage;
  if (info_.store_stats) {
    const storage::StoreStats stats = info_.store_stats();
    s.rounds = stats.rounds;
    s.completions = stats.completions;
    s.bytes_written = stats.bytes;
    s.checkpoints = stats.checkpoints;
    s.damaged_records = stats.damaged_records;
    s.round_write = stats.write_latency;
    s.fsync = stats.sync_latency;
  }
  if (info_.disk != nullptr) {
    s.disk_free_bytes = info_.disk->free_bytes();
    s.min_free_disk_bytes = info_.disk->min_free();
    s.disk_low = info_.disk->low();
  }
  s.failed = core_.storage_failed();
  if (s.failed) s.failure = core_.storage_error().ToString();
}

}  // namespace txmq::broker
