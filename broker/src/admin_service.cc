#include "broker/src/admin_service.h"

#include "broker/src/auth/acl.h"
#include "broker/src/settings.h"
#include "protocol/src/log.h"
#include "protocol/src/message_codec.h"
#include "protocol/src/util.h"
#include "txmq/names.h"
#include "txmq/version.h"

namespace txmq::broker {

Limits::Counts CountLimits(const TopicManager& topics, GroupTable& groups,
                           const TransactionService& transactions, const ServerInfo& info) {
  Limits::Counts counts;
  counts.topics = topics.all().size();
  counts.groups = groups.all().size();
  counts.open_tx = transactions.open_count();
  counts.open_tx_largest_group = transactions.LargestGroupOpen();
  counts.topics_largest_principal = topics.created_by().Largest();
  counts.groups_largest_principal = groups.created_by().Largest();
  if (info.largest_principal_connections) {
    counts.connections_largest_principal = info.largest_principal_connections();
  }
  return counts;
}

void FillMetricsStatus(const MetricsSnapshot& m, wire::MetricsStatus::Builder out) {
  out.setDelivered(m.counters.delivered);
  out.setAcked(m.counters.acked);
  out.setDuplicates(m.counters.duplicates);
  out.setRedeliveriesScheduled(m.counters.redeliveries_scheduled);
  out.setDroppedReplies(m.counters.dropped_replies);
  out.setMessagesStoredSinceStart(m.counters.messages_stored);
  out.setAdmins(static_cast<uint32_t>(m.admins));
  out.setStorageBytesWritten(m.storage.bytes_written);
  out.setStorageCheckpoints(m.storage.checkpoints);
  auto copy = [](const auto& from, auto to) {
    for (unsigned i = 0; i < from.size(); ++i) to.set(i, from[i]);
  };
  copy(storage::kLatencyBucketsMicros,
       out.initLatencyBoundsMicros(storage::kLatencyBucketsMicros.size()));
  copy(m.storage.round_write.counts, out.initRoundWriteCounts(m.storage.round_write.counts.size()));
  copy(m.storage.fsync.counts, out.initFsyncCounts(m.storage.fsync.counts.size()));
  auto queues = out.initQueues(static_cast<unsigned>(m.queues.size()));
  for (unsigned i = 0; i < m.queues.size(); ++i) {
    const QueueMetrics& q = m.queues[i];
    queues[i].setTopic(q.topic);
    queues[i].setQueue(q.queue);
    queues[i].setMessagesIn(q.messages_in);
    queues[i].setBytesIn(q.bytes_in);
    queues[i].setBacklog(q.backlog);
    queues[i].setOldestAgeMs(q.oldest_age_ms);
  }
  auto groups = out.initGroups(static_cast<unsigned>(m.groups.size()));
  for (unsigned i = 0; i < m.groups.size(); ++i) {
    const GroupMetrics& g = m.groups[i];
    groups[i].setGroup(g.name);
    auto topics = groups[i].initTopics(static_cast<unsigned>(g.topics.size()));
    for (unsigned t = 0; t < g.topics.size(); ++t) {
      topics[t].setTopic(g.topics[t].topic);
      topics[t].setLag(g.topics[t].lag);
      topics[t].setInFlight(g.topics[t].in_flight);
    }
    groups[i].setInFlight(g.in_flight);
    groups[i].setRedeliveriesScheduled(g.redeliveries_scheduled);
    groups[i].setDeadLettered(g.dead_lettered);
    groups[i].setExpired(g.expired);
  }
  auto producers = out.initProducerGroups(static_cast<unsigned>(m.producer_groups.size()));
  for (unsigned i = 0; i < m.producer_groups.size(); ++i) {
    const ProducerGroupMetrics& p = m.producer_groups[i];
    producers[i].setGroup(p.name);
    producers[i].setOpen(p.open);
    producers[i].setStuck(p.stuck);
    producers[i].setCommitted(p.committed);
    producers[i].setRolledBack(p.rolled_back);
    producers[i].setChecksSent(p.checks_sent);
    copy(p.answers, producers[i].initAnswers(p.answers.size()));
  }
}

void AdminService::HandleStatus(const RequestContext& ctx) {
  auto reply = Core::NewReply(ctx);
  auto s = reply.envelope().initStatusOk();
  const BrokerOptions& o = core_.options();
  s.setBrokerName(o.name);
  s.setVersion(kVersion);
  s.setUptimeMs(core_.NowMs() - info_.started_ms);
  s.setDataDir(o.data_dir);
  s.setFlushMode(o.flush == FlushMode::kSync ? "sync" : "async");
  s.setListen(info_.endpoint);
  s.setTopics(static_cast<uint32_t>(topics_.all().size()));
  // Counted from offsets, less what cannot be read back (taken out of its
  // queue, or found damaged).
  const uint64_t unreadable = core_.store().unreadable_messages();
  const uint64_t stored = topics_.MessagesStored();
  s.setMessagesStored(stored > unreadable ? stored - unreadable : 0);
  s.setProducers(clients_.Count(wire::Role::PRODUCER));
  s.setConsumers(clients_.Count(wire::Role::CONSUMER));
  s.setBadFrames(core_.counters().bad_frames);
  s.setStorageHealthy(!core_.storage_failed());
  transactions_.FillCounters(s.initTransactions());
  s.setConsumerGroups(static_cast<uint32_t>(groups_.all().size()));
  s.setDeadLettered(core_.counters().dead_lettered);
  s.setExpiredUnconsumed(core_.counters().expired_unconsumed);
  if (info_.store_stats) {
    const storage::StoreStats c = info_.store_stats();
    s.setCommitRounds(c.rounds);
    s.setCommitRequests(c.completions);
    s.setCommitWriteMicros(c.write_micros);
    s.setDamagedRecords(c.damaged_records);
  }
  if (info_.disk != nullptr) {
    s.setDiskFreeBytes(info_.disk->free_bytes());
    s.setMinFreeDiskBytes(info_.disk->min_free());
    s.setDiskLow(info_.disk->low());
  }
  const auto limits = core_.limits().Report(CountLimits(topics_, groups_, transactions_, info_));
  auto uses = s.initLimits(static_cast<unsigned>(limits.size()));
  for (unsigned i = 0; i < limits.size(); ++i) {
    uses[i].setName(limits[i].name);
    uses[i].setLimit(limits[i].limit);
    uses[i].setUsed(limits[i].used);
    uses[i].setRefused(limits[i].refused);
  }
  // The metrics name every topic, consumer group and producer group, with
  // their backlogs and outcomes: under an ACL, an admin's (as topic and
  // group lists are); and collecting them walks every queue.
  const bool sees_everything = ctx.principal == nullptr || ctx.principal->admin;
  if (collect_ && sees_everything) FillMetricsStatus(collect_(), s.initMetrics());
  const auto settings = EffectiveSettings(o);
  auto out = s.initSettings(static_cast<unsigned>(settings.size()));
  for (unsigned i = 0; i < settings.size(); ++i) {
    out[i].setName(settings[i].first);
    out[i].setValue(settings[i].second);
  }
  core_.Reply(ctx, reply);
}

void AdminService::HandleCreateTopic(const RequestContext& ctx,
                                     wire::CreateTopicRequest::Reader request) {
  if (Status s = core_.CheckWritable(); !s.ok()) return core_.ReplyError(ctx, s);
  const std::string name = wire::ToString(request.getTopic());
  if (Status s = ValidateName("topic", name); !s.ok()) return core_.ReplyError(ctx, s);
  uint32_t queues = request.getQueues();
  if (queues > kMaxQueues) {
    return core_.ReplyError(
        ctx, Status::InvalidArgument("queues " + std::to_string(queues) + " must be 1-" +
                                     std::to_string(kMaxQueues) + " (0 = broker default)"));
  }
  const bool existed = topics_.Find(name) != nullptr;
  if (!existed) {
    Status s = core_.CheckAcceptsNewData();
    if (s.ok()) s = topics_.AdmitNew(name, ctx);
    if (!s.ok()) {
      Logger("audit")->warn(
          "operator='{}' principal='{}' client={} action=topic-create topic={} queues={} "
          "result={}",
          AuditField(wire::ToString(request.getOperator())), AuditField(ctx.principal_name()),
          AuditToken(ctx.client_id()), name, queues == 0 ? core_.options().default_queues : queues,
          "refused: " + AuditField(s.ToString()));
      return core_.ReplyError(ctx, s);
    }
  }
  auto topic = topics_.GetOrCreate(name, true, queues, ctx.creator());
  // One audit line per create asked for, also one that changes nothing.
  Logger("audit")->warn(
      "operator='{}' principal='{}' client={} action=topic-create topic={} queues={} result={}",
      AuditField(wire::ToString(request.getOperator())), AuditField(ctx.principal_name()),
      AuditToken(ctx.client_id()), name,
      topic.ok() ? (*topic)->queues.size()
                 : (queues == 0 ? core_.options().default_queues : queues),
      !topic.ok() ? "failed: " + AuditField(topic.status().ToString())
                  : (existed ? "exists" : "created"));
  if (!topic.ok()) return core_.ReplyError(ctx, topic.status());
  const auto actual = static_cast<uint32_t>((*topic)->queues.size());
  core_.OnDurable([this, routing_id = ctx.routing_id, request_id = ctx.request_id, name, actual,
                   existed](const Status& s) {
    if (!s.ok()) {
      return core_.ReplyError({routing_id, request_id, nullptr},
                              Status::Unavailable("topic not created: " + s.message()));
    }
    wire::OutFrame reply(request_id);
    auto ok = reply.envelope().initCreateTopicOk();
    ok.setTopic(name);
    ok.setQueues(actual);
    ok.setCreated(!existed);
    core_.Reply(routing_id, reply);
  });
}

}  // namespace txmq::broker
