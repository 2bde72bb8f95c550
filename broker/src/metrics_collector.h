// Copies the core thread's state into a MetricsSnapshot (metrics_snapshot.h)
// for /metrics and txmqctl status: per queue, per consumer group, per
// producer group, storage, clients and limits.
//
// Cost: one walk over every queue, every group's cursors and retries, and
// the open transactions (what txmqctl status, topic list and group list
// each walk anyway). The age of each queue's oldest stored message needs
// that message's stored time, a store read: it is remembered per queue and
// read again only when retention moved the queue's start, so a steady
// broker pays no reads per scrape. The same holds for the oldest message a
// group reading the queue has not finished (the lowest cursor floor of the
// topic's readers, GroupTable::ReadersOf): read again only when it moved.
//
// Thread safety: the core thread only.
#pragma once

#include <cstdint>
#include <map>
#include <utility>

#include "broker/src/admin_service.h"
#include "broker/src/clients.h"
#include "broker/src/core.h"
#include "broker/src/groups.h"
#include "broker/src/metrics_snapshot.h"
#include "broker/src/topics.h"
#include "broker/src/transactions.h"

namespace txmq::broker {

class MetricsCollector {
 public:
  // Everything must outlive the collector.
  MetricsCollector(Core& core, TopicManager& topics, GroupTable& groups, ClientRegistry& clients,
                   const TransactionService& transactions, const ServerInfo& info)
      : core_(core),
        topics_(topics),
        groups_(groups),
        clients_(clients),
        transactions_(transactions),
        info_(info) {}

  MetricsSnapshot Collect();

 private:
  void CollectQueues(MetricsSnapshot& out);
  void CollectGroups(MetricsSnapshot& out);
  void CollectProducerGroups(MetricsSnapshot& out);
  void CollectStorage(MetricsSnapshot& out);
  // Stored time of the first readable message at or after `offset` (up to
  // a few offsets on: some may have been taken out); nullopt if none.
  std::optional<int64_t> OldestStoredMs(const TopicState& topic, uint32_t queue);
  std::optional<int64_t> StoredMsAt(const TopicState& topic, uint32_t queue, uint64_t offset);

  Core& core_;
  TopicManager& topics_;
  GroupTable& groups_;
  ClientRegistry& clients_;
  const TransactionService& transactions_;
  const ServerInfo& info_;
  // (topic id, queue) -> (first stored offset when read, its stored time).
  // Entries of deleted topics stay until the next collection drops them.
  std::map<std::pair<uint32_t, uint32_t>, std::pair<uint64_t, int64_t>> oldest_;
  // The same for the oldest unconsumed message: (its offset, stored time),
  // read again only when the lowest floor moved.
  std::map<std::pair<uint32_t, uint32_t>, std::pair<uint64_t, int64_t>> unconsumed_;
};

}  // namespace txmq::broker
