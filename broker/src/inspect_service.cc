#include "broker/src/inspect_service.h"

#include "broker/src/round_replicator.h"

#include <algorithm>
#include <memory>

#include "broker/src/cluster_status_reply.h"
#include "broker/src/queue_owners.h"
#include "broker/src/stored_message.h"
#include "protocol/src/message_codec.h"
#include "protocol/src/util.h"
#include "txmq/names.h"
#include "txmq/properties.h"

namespace txmq::broker {

namespace {

// find scans at most this many records of a queue (newest first).
constexpr uint64_t kMaxFindScan = 200'000;
constexpr uint32_t kDefaultFindLimit = 20;
constexpr size_t kMaxRetriesShown = 100;

std::string PropertyOf(const storage::MessageView& m, std::string_view name) {
  for (const auto& [k, v] : m.properties) {
    if (k == name) return std::string(v);
  }
  return {};
}

}  // namespace

void ForEachDeadLetter(Core& core, const TopicState* dlq, uint64_t from_offset,
                       const DeadLetterFn& fn) {
  if (dlq == nullptr) return;
  const QueueState& q = dlq->queues[0];
  for (uint64_t offset = std::max(from_offset, q.min_offset); offset < q.visible_end; ++offset) {
    auto stored = core.store().ReadMessage(dlq->id, 0, offset);
    if (!stored.ok()) continue;  // resent (removed), or expired meanwhile
    if (!fn(offset, stored->body.message)) break;
  }
}

uint64_t DeadLettersArriving(const TopicState* dlq) {
  if (dlq == nullptr) return 0;
  const QueueState& q = dlq->queues[0];
  return q.next_offset - q.visible_end;
}

Result<const TopicState*> DeadLetterTopicOf(TopicManager& topics, GroupTable& groups,
                                            const std::string& group) {
  const TopicState* dlq = topics.Find(DeadLetterTopic(group));
  if (dlq == nullptr && groups.Find(group) == nullptr) {
    return Status::NotFound("consumer group '" + group +
                            "' is not known and has no dead-letter queue here (txmqctl group "
                            "list shows the groups and, in a cluster, the broker groups each "
                            "reads)");
  }
  return dlq;
}

void InspectService::FillTopic(const TopicState& topic, bool with_groups,
                               wire::TopicInfo::Builder out) {
  out.setName(topic.name);
  out.setCreatedMs(topic.created_ms);
  auto queues = out.initQueues(static_cast<unsigned>(topic.queues.size()));
  const QueuePlacement placement = PlacementFor(core_.options());
  // A placed topic's queues are spread over the cluster's groups: each
  // queue names its own group and that group's leader.
  std::optional<TopicPlacementSource::Served> placed;
  if (topics_.placement() != nullptr) placed = topics_.placement()->ServedQueues(topic.name);
  if (placed && placed->groups.size() != topic.queues.size()) placed.reset();
  uint64_t messages = 0;
  for (uint32_t q = 0; q < topic.queues.size(); ++q) {
    queues[q].setQueue(q);
    const auto draining = placed ? topics_.placement()->DrainingOf(topic.name, q) : std::nullopt;
    // A queue that moved away from here: its offsets below are this
    // group's part, still delivered here, so the row names this group and
    // where the queue went.
    const bool moved_away = draining && draining->from == placement.group;
    if (placed && placed->groups[q] != placement.group && !moved_away) {
      queues[q].setGroup(placed->groups[q]);
      queues[q].setLeader(core_.options().replicator->LeaderNodeOf(placed->groups[q]));
    } else {
      queues[q].setGroup(placement.group);
      queues[q].setLeader(placement.leader);
    }
    if (moved_away) queues[q].setMovedTo(placed->groups[q]);
    if (placed) {
      if (draining) {
        queues[q].setDrainingFrom(draining->from);
        queues[q].setDrainReported(draining->pending.has_value());
        const auto& pending = draining->pending ? *draining->pending : std::vector<std::string>{};
        auto list = queues[q].initDrainPending(static_cast<unsigned>(pending.size()));
        for (unsigned i = 0; i < pending.size(); ++i) list.set(i, pending[i]);
      }
    }
    queues[q].setMinOffset(topic.queues[q].min_offset);
    queues[q].setEndOffset(topic.queues[q].visible_end);
    // Not what cannot be read back (taken out of the queue, or damaged).
    const uint64_t offsets = topic.queues[q].visible_end - topic.queues[q].min_offset;
    const uint64_t unreadable = core_.store().unreadable_messages(topic.id, q);
    messages += offsets > unreadable ? offsets - unreadable : 0;
  }
  out.setMessages(messages);
  if (!with_groups) return;
  std::vector<std::pair<GroupState*, const Subscription*>> subs;
  for (auto& [name, g] : groups_.all()) {
    auto s = g.subscriptions.find(topic.name);
    if (s != g.subscriptions.end()) subs.emplace_back(&g, &s->second);
  }
  auto groups = out.initGroups(static_cast<unsigned>(subs.size()));
  for (unsigned i = 0; i < subs.size(); ++i) {
    const auto& [g, sub] = subs[i];
    uint64_t lag = 0;
    uint32_t in_flight = 0, retrying = 0;
    for (uint32_t q = 0; q < sub->queues.size() && q < topic.queues.size(); ++q) {
      const uint64_t floor = std::max(sub->queues[q].floor(), topic.queues[q].min_offset);
      lag += topic.queues[q].visible_end > floor ? topic.queues[q].visible_end - floor : 0;
      in_flight += static_cast<uint32_t>(sub->queues[q].leased.size());
    }
    for (const auto& [id, e] : g->retries) retrying += e.record.topic == topic.name;
    groups[i].setGroup(g->name);
    groups[i].setLag(lag);
    groups[i].setInFlight(in_flight);
    groups[i].setRetrying(retrying);
  }
}

void InspectService::HandleTopicList(const RequestContext& ctx) {
  auto reply = Core::NewReply(ctx);
  auto list =
      reply.envelope().initTopicListOk().initTopics(static_cast<unsigned>(topics_.all().size()));
  unsigned i = 0;
  for (const auto& [name, topic] : topics_.all()) FillTopic(topic, false, list[i++]);
  core_.Reply(ctx, reply);
}

void InspectService::HandleTopicShow(const RequestContext& ctx, capnp::Text::Reader name) {
  const TopicState* topic = topics_.Find(wire::ToString(name));
  if (topic == nullptr) {
    return core_.ReplyError(ctx, topics_.Missing(wire::ToString(name)));
  }
  auto reply = Core::NewReply(ctx);
  FillTopic(*topic, true, reply.envelope().initTopicShowOk());
  core_.Reply(ctx, reply);
}

void InspectService::FillDeliveryState(GroupState& g, const std::string& topic, uint32_t queue,
                                       uint64_t offset, const std::string& message_id,
                                       wire::DeliveryState::Builder out) {
  out.setGroup(g.name);
  for (const auto& [id, e] : g.retries) {
    if (e.record.topic != topic || e.record.queue != queue || e.record.offset != offset) continue;
    out.setDeliveryCount(e.record.delivery_count);
    if (e.lease) {
      out.setState("in-flight");
      out.setDeliveryCount(e.lease->delivery_count);
      out.setDetail("redelivery leased to " + clients_.NameOf(e.lease->client));
    } else {
      out.setState("retrying");
      out.setDetail("next delivery in " +
                    FormatDurationMs(std::max<int64_t>(0, e.due_ms - core_.NowMs())));
    }
    return;
  }
  auto sub = g.subscriptions.find(topic);
  if (sub == g.subscriptions.end() || queue >= sub->second.queues.size()) {
    out.setState("pending");
    out.setDetail("the group has not read this topic yet");
    return;
  }
  const QueueCursor& c = sub->second.queues[queue];
  if (auto l = c.leased.find(offset); l != c.leased.end()) {
    out.setState("in-flight");
    out.setDeliveryCount(l->second.delivery_count);
    out.setDetail("leased to " + clients_.NameOf(l->second.client) + ", lease ends in " +
                  FormatDurationMs(std::chrono::duration_cast<std::chrono::milliseconds>(
                                       l->second.deadline - core_.SteadyNow())
                                       .count()));
    return;
  }
  if (offset >= c.next) {
    out.setState("pending");
    return;
  }
  // Finished for the group: acknowledged, or failed into the dead letters.
  bool dead = false;
  ForEachDeadLetter(core_, topics_.Find(DeadLetterTopic(g.name)), 0,
                    [&](uint64_t, const storage::MessageView& m) {
                      dead = m.id == message_id &&
                             PropertyOf(m, property::kDeadLetterTopic) == topic &&
                             PropertyOf(m, property::kDeadLetterOffset) == std::to_string(offset);
                      return !dead;
                    });
  out.setState(dead ? "dead-lettered" : "consumed");
}

void InspectService::HandleShowMessage(const RequestContext& ctx,
                                       wire::ShowMessageRequest::Reader request) {
  const std::string id = wire::ToString(request.getMessageId());
  // Newest first over the retention period: the id index is bucketed by
  // the time the message was stored.
  storage::BrokerStore& store = core_.store();
  const uint64_t newest = static_cast<uint64_t>(core_.NowMs()) / storage::store::kIdBucketMs + 1;
  const uint64_t span =
      static_cast<uint64_t>(core_.options().retention.count()) / storage::store::kIdBucketMs + 2;
  std::optional<storage::StoredMessage> found;
  storage::Location where;
  for (uint64_t b = newest; b + span > newest && b > 0 && !found; --b) {
    auto entry = store.GetId(b, id);
    if (!entry || !entry->has_offset) continue;
    const TopicState* topic = topics_.FindById(entry->topic_id);
    if (topic == nullptr) continue;
    auto stored = store.ReadMessage(topic->id, entry->queue, entry->offset);
    if (!stored.ok()) continue;
    found = std::move(stored.value());
    where = {topic->name, entry->queue, entry->offset};
  }
  if (!found) {
    return core_.ReplyError(
        ctx, Status::NotFound("message '" + id +
                              "' is not stored in any topic (never sent, deleted by "
                              "retention, still delayed, or a half message: see tx list)"));
  }
  const storage::MessageView& m = found->body.message;
  auto reply = Core::NewReply(ctx);
  auto detail = reply.envelope().initShowMessageOk();
  FillWireMessage(m, 0, detail.initMessage());
  auto loc = detail.initLocation();
  loc.setTopic(where.topic);
  loc.setQueue(where.queue);
  loc.setOffset(where.offset);
  loc.setStoredMs(m.stored_ms);
  std::vector<GroupState*> readers;
  for (auto& [name, g] : groups_.all()) {
    if (g.subscriptions.count(where.topic)) readers.push_back(&g);
  }
  auto deliveries = detail.initDeliveries(static_cast<unsigned>(readers.size()));
  for (unsigned i = 0; i < readers.size(); ++i) {
    FillDeliveryState(*readers[i], where.topic, where.queue, where.offset, id, deliveries[i]);
  }
  core_.Reply(ctx, reply);
}

void InspectService::HandleFindMessages(const RequestContext& ctx,
                                        wire::FindMessagesRequest::Reader request) {
  const std::string name = wire::ToString(request.getTopic());
  const std::string key = wire::ToString(request.getKey());
  TopicState* topic = topics_.Find(name);
  if (topic == nullptr) {
    return core_.ReplyError(ctx, topics_.Missing(name));
  }
  if (key.empty()) return core_.ReplyError(ctx, Status::InvalidArgument("a key is required"));
  const uint32_t limit = request.getLimit() == 0 ? kDefaultFindLimit : request.getLimit();
  // A key lives in exactly one queue: scan only that one, newest first.
  const uint32_t queue = static_cast<uint32_t>(StableHash(key) % topic->queues.size());
  const QueueState& qs = topic->queues[queue];
  struct Hit {
    uint64_t offset;
    storage::MessageView m;  // views into the log
  };
  std::vector<Hit> hits;
  uint64_t scanned = 0;
  for (uint64_t offset = qs.visible_end;
       offset > qs.min_offset && hits.size() < limit && scanned < kMaxFindScan; ++scanned) {
    --offset;
    auto stored = core_.store().ReadMessage(topic->id, queue, offset);
    if (stored.ok() && stored->body.message.key == key) {
      hits.push_back({offset, stored->body.message});
    }
  }
  auto reply = Core::NewReply(ctx);
  auto ok = reply.envelope().initFindMessagesOk();
  auto list = ok.initMessages(static_cast<unsigned>(hits.size()));
  for (unsigned i = 0; i < hits.size(); ++i) {
    const storage::MessageView& m = hits[i].m;
    CopyText(m.id, [&](unsigned n) { return list[i].initId(n); });
    CopyText(m.key, [&](unsigned n) { return list[i].initKey(n); });
    list[i].setBodyBytes(static_cast<uint32_t>(m.body.size()));
    auto loc = list[i].initLocation();
    loc.setTopic(name);
    loc.setQueue(queue);
    loc.setOffset(hits[i].offset);
    loc.setStoredMs(m.stored_ms);
    auto props = list[i].initProperties(static_cast<unsigned>(m.properties.size()));
    for (unsigned p = 0; p < m.properties.size(); ++p) {
      CopyText(m.properties[p].first, [&](unsigned n) { return props[p].initKey(n); });
      CopyText(m.properties[p].second, [&](unsigned n) { return props[p].initValue(n); });
    }
  }
  ok.setScanned(scanned);
  ok.setTruncated(scanned >= kMaxFindScan);
  core_.Reply(ctx, reply);
}

void InspectService::FillGroup(GroupState& g, bool detailed, wire::GroupInfo::Builder out) {
  out.setName(g.name);
  auto topics = out.initTopics(static_cast<unsigned>(g.subscriptions.size()));
  unsigned t = 0;
  uint64_t lag = 0;
  uint32_t in_flight = 0;
  // Each cursor's lag is worked out once, so the header's sum and the rows
  // agree: what retention deleted is not lag (it is counted as expired).
  struct Row {
    const std::string* topic;
    uint32_t queue;
    const QueueCursor* cursor;
    const QueueState* state;
    uint64_t lag;
  };
  std::vector<Row> cursors;
  for (const auto& [name, sub] : g.subscriptions) {
    topics.set(t++, name);
    const TopicState* topic = topics_.Find(name);
    for (uint32_t q = 0; q < sub.queues.size(); ++q) {
      const QueueState* qs =
          topic != nullptr && q < topic->queues.size() ? &topic->queues[q] : nullptr;
      const QueueCursor& c = sub.queues[q];
      uint64_t queue_lag = 0;
      if (qs != nullptr) {
        const uint64_t floor = std::max(c.floor(), qs->min_offset);
        queue_lag = qs->visible_end > floor ? qs->visible_end - floor : 0;
      }
      lag += queue_lag;
      in_flight += static_cast<uint32_t>(c.leased.size());
      cursors.push_back({&name, q, &c, qs, queue_lag});
    }
  }
  std::vector<const ClientInfo*> members;
  for (const auto& [id, c] : clients_.all()) {
    if (c.role == wire::Role::CONSUMER && c.group == g.name) members.push_back(&c);
  }
  FillClients(members, core_.SteadyNow(), out.initMembers(static_cast<unsigned>(members.size())));
  uint32_t leased_retries = 0;
  for (const auto& [id, e] : g.retries) leased_retries += e.lease.has_value();
  out.setLag(lag);
  out.setExpired(g.expired);
  out.setInFlight(in_flight + leased_retries);
  out.setRetrying(static_cast<uint32_t>(g.retries.size()));
  // Counted, not subtracted: resending leaves gaps in the dead-letter queue.
  uint64_t dead = 0;
  ForEachDeadLetter(core_, topics_.Find(DeadLetterTopic(g.name)), 0,
                    [&](uint64_t, const storage::MessageView&) {
                      ++dead;
                      return true;
                    });
  out.setDeadLetters(dead);
  if (!detailed) return;
  auto list = out.initCursors(static_cast<unsigned>(cursors.size()));
  for (unsigned i = 0; i < cursors.size(); ++i) {
    const Row& row = cursors[i];
    list[i].setTopic(*row.topic);
    list[i].setQueue(row.queue);
    list[i].setFloor(row.cursor->floor());
    list[i].setNext(row.cursor->next);
    list[i].setEnd(row.state != nullptr ? row.state->visible_end : 0);
    list[i].setInFlight(static_cast<uint32_t>(row.cursor->leased.size()));
    list[i].setLag(row.lag);
    list[i].setExpired(row.cursor->expired);
    if (!row.cursor->owner.empty()) {
      list[i].setOwner(clients_.NameOf(row.cursor->owner));
      list[i].setHandingOver(!MayTake(*row.cursor, row.cursor->owner));
    }
  }
  std::vector<const RetryEntry*> retries;
  for (const auto& [id, e] : g.retries) retries.push_back(&e);
  std::sort(retries.begin(), retries.end(),
            [](const RetryEntry* a, const RetryEntry* b) { return a->due_ms < b->due_ms; });
  if (retries.size() > kMaxRetriesShown) retries.resize(kMaxRetriesShown);
  auto r = out.initRetries(static_cast<unsigned>(retries.size()));
  for (unsigned i = 0; i < retries.size(); ++i) {
    const RetryEntry& e = *retries[i];
    r[i].setRetryId(e.id);
    r[i].setTopic(e.record.topic);
    r[i].setQueue(e.record.queue);
    r[i].setOffset(e.record.offset);
    r[i].setDeliveryCount(e.record.delivery_count);
    r[i].setDueMs(e.due_ms);
    r[i].setLeased(e.lease.has_value());
    const storage::Location source = e.Source();
    if (const TopicState* t = topics_.Find(source.topic); t != nullptr) {
      if (auto stored = core_.store().ReadMessage(t->id, source.queue, source.offset);
          stored.ok()) {
        CopyText(stored->body.message.id, [&](unsigned n) { return r[i].initMessageId(n); });
      }
    }
  }
}

void InspectService::HandleGroupList(const RequestContext& ctx) {
  auto reply = Core::NewReply(ctx);
  auto list =
      reply.envelope().initGroupListOk().initGroups(static_cast<unsigned>(groups_.all().size()));
  unsigned i = 0;
  for (auto& [name, g] : groups_.all()) FillGroup(g, false, list[i++]);
  core_.Reply(ctx, reply);
}

void InspectService::HandleGroupShow(const RequestContext& ctx, capnp::Text::Reader name) {
  GroupState* g = groups_.Find(wire::ToString(name));
  if (g == nullptr) {
    return core_.ReplyError(ctx, Status::NotFound("consumer group '" + wire::ToString(name) +
                                                  "' has never consumed here"));
  }
  auto reply = Core::NewReply(ctx);
  FillGroup(*g, true, reply.envelope().initGroupShowOk());
  core_.Reply(ctx, reply);
}

}  // namespace txmq::broker
