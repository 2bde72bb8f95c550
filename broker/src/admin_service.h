// Operator requests: broker status and explicit topic creation.
#pragma once

#include <functional>
#include <string>

#include "broker/src/clients.h"
#include "broker/src/core.h"
#include "broker/src/disk_watermark.h"
#include "broker/src/groups.h"
#include "broker/src/metrics_snapshot.h"
#include "broker/src/topics.h"
#include "broker/src/transactions.h"
#include "storage/src/broker_store.h"

namespace txmq::broker {

struct ServerInfo {
  std::string endpoint;
  int64_t started_ms = 0;
  std::function<storage::StoreStats()> store_stats;
  const DiskWatermark* disk = nullptr;
  // The most connections one principal has open (CURVE); null: none counted.
  std::function<size_t()> largest_principal_connections;
};

// What the limits count now (Limits::Report's input): status and metrics
// report the same.
Limits::Counts CountLimits(const TopicManager& topics, GroupTable& groups,
                           const TransactionService& transactions, const ServerInfo& info);

// Fills status's metrics object from a snapshot (what /metrics shows
// beyond the other status fields).
void FillMetricsStatus(const MetricsSnapshot& snapshot, wire::MetricsStatus::Builder out);

class AdminService {
 public:
  // `collect` takes a metrics snapshot (MetricsCollector::Collect).
  AdminService(Core& core, TopicManager& topics, ClientRegistry& clients,
               const TransactionService& transactions, GroupTable& groups, const ServerInfo& info,
               std::function<MetricsSnapshot()> collect)
      : core_(core),
        topics_(topics),
        clients_(clients),
        transactions_(transactions),
        groups_(groups),
        info_(info),
        collect_(std::move(collect)) {}

  void HandleStatus(const RequestContext& ctx);
  void HandleCreateTopic(const RequestContext& ctx, wire::CreateTopicRequest::Reader request);

 private:
  Core& core_;
  TopicManager& topics_;
  ClientRegistry& clients_;
  const TransactionService& transactions_;
  GroupTable& groups_;
  const ServerInfo& info_;
  std::function<MetricsSnapshot()> collect_;
};

}  // namespace txmq::broker
