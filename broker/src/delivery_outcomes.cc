// The ends of leases: ack, nack, expiry, a consumer leaving; redelivery
// scheduling and dead-lettering. (Long polls: delivery_parked.cc.)
#include <algorithm>

#include "broker/src/delivery.h"
#include "broker/src/queue_owners.h"
#include "protocol/src/log.h"
#include "protocol/src/message_codec.h"
#include "storage/src/records.h"
#include "txmq/names.h"
#include "txmq/properties.h"

namespace txmq::broker {

// The lease a receipt names, if it is still the current one.
const LeaseRef* MatchLease(GroupTable& groups, std::string_view group, wire::Receipt::Reader r) {
  auto it = groups.leases().find(r.getLeaseId());
  if (it == groups.leases().end()) return nullptr;
  const LeaseRef& ref = it->second;
  const auto topic = r.getTopic();
  if (ref.group->name != group || ref.retry_id != r.getRetryId() || ref.offset != r.getOffset() ||
      ref.queue != r.getQueue() || ref.topic != std::string_view(topic.begin(), topic.size())) {
    return nullptr;
  }
  return &ref;
}

namespace {

void ReplyCountsWhenDurable(Core& core, const RequestContext& ctx,
                            std::function<void(wire::Envelope::Builder)> fill) {
  core.OnDurable([&core, routing_id = ctx.routing_id, request_id = ctx.request_id,
                  fill = std::move(fill)](const Status& s) {
    if (!s.ok()) {
      return core.ReplyError({routing_id, request_id, nullptr},
                             Status::Unavailable("not recorded: " + s.message()));
    }
    wire::OutFrame reply(request_id);
    fill(reply.envelope());
    core.Reply(routing_id, reply);
  });
}

}  // namespace

void Delivery::HandleAck(const RequestContext& ctx, wire::AckRequest::Reader request) {
  if (Status s = core_.CheckWritable(); !s.ok()) return core_.ReplyError(ctx, s);
  const std::string group = wire::ToString(request.getGroup());
  uint32_t acked = 0, expired = 0;
  for (auto r : request.getReceipts()) {
    const LeaseRef* ref = MatchLease(groups_, group, r);
    // Only the holder ends a lease (as only it may extend one): another
    // client's receipt, copied or guessed, counts as expired.
    if (ref == nullptr || ref->client != ctx.routing_id) {
      ++expired;
      continue;
    }
    GroupState& g = *ref->group;
    if (ref->cursor != nullptr) {
      QueueCursor& c = *ref->cursor;
      c.leased.erase(ref->offset);
      groups_.MarkDirty(c);
    } else {
      auto e = g.retries.find(ref->retry_id);
      core_.store().DeleteRetry(g.name, e->second.due_ms, e->first);
      g.retries.erase(e);
    }
    groups_.RemoveLease(r.getLeaseId());
    ++acked;
  }
  core_.counters().acked += acked;
  ReplyCountsWhenDurable(core_, ctx, [acked, expired](wire::Envelope::Builder env) {
    auto ok = env.initAckOk();
    ok.setAcked(acked);
    ok.setExpired(expired);
  });
}

void Delivery::HandleNack(const RequestContext& ctx, wire::NackRequest::Reader request) {
  if (Status s = core_.CheckWritable(); !s.ok()) return core_.ReplyError(ctx, s);
  const std::string group = wire::ToString(request.getGroup());
  const bool release = request.getRelease();
  const uint32_t max_reconsume = request.getMaxReconsumeTimes();
  Announce(ctx, max_reconsume);
  uint32_t requeued = 0, dead = 0, expired = 0;
  for (auto r : request.getReceipts()) {
    const LeaseRef* ref = MatchLease(groups_, group, r);
    if (ref == nullptr || ref->client != ctx.routing_id) {  // see HandleAck
      ++expired;
      continue;
    }
    if (FailLease(r.getLeaseId(), !release, request.getDelayMs(), max_reconsume)) {
      ++dead;
    } else {
      ++requeued;
    }
  }
  ReplyCountsWhenDurable(core_, ctx, [requeued, dead, expired](wire::Envelope::Builder env) {
    auto ok = env.initNackOk();
    ok.setRequeued(requeued);
    ok.setDeadLettered(dead);
    ok.setExpired(expired);
  });
}

uint32_t Delivery::BackoffMs(uint32_t failed_deliveries) const {
  const auto& levels = core_.options().retry_backoff;
  if (levels.empty()) return 1000;
  size_t i =
      std::min<size_t>(failed_deliveries == 0 ? 0 : failed_deliveries - 1, levels.size() - 1);
  return static_cast<uint32_t>(levels[i].count());
}

uint32_t Delivery::MaxReconsume(const std::string& client, uint32_t requested) const {
  if (requested != 0) return requested;
  auto it = announced_max_reconsume_.find(client);
  if (it != announced_max_reconsume_.end()) return it->second;
  return core_.options().max_reconsume_times;
}

void Delivery::Announce(const RequestContext& ctx, uint32_t max_reconsume) {
  // Only registered clients: their entry goes when they leave (ReleaseClient).
  if (ctx.client == nullptr) return;
  if (max_reconsume == 0) {
    announced_max_reconsume_.erase(ctx.routing_id);
  } else {
    announced_max_reconsume_[ctx.routing_id] = max_reconsume;
  }
}

bool Delivery::FailLease(uint64_t lease_id, bool count_attempt, uint32_t delay_ms,
                         uint32_t max_reconsume) {
  auto found = groups_.leases().find(lease_id);
  if (found == groups_.leases().end()) return false;
  const LeaseRef ref = found->second;
  groups_.RemoveLease(lease_id);
  GroupState& g = *ref.group;
  max_reconsume = MaxReconsume(ref.client, max_reconsume);

  uint32_t deliveries;  // deliveries that count so far, including this one
  RetryEntry* existing = nullptr;
  const bool redelivery = ref.cursor == nullptr;
  if (ref.cursor != nullptr) {
    auto l = ref.cursor->leased.find(ref.offset);
    deliveries = l->second.delivery_count;
    ref.cursor->leased.erase(l);
    groups_.MarkDirty(*ref.cursor);
  } else {
    existing = &g.retries.at(ref.retry_id);
    deliveries = existing->lease->delivery_count;
    existing->lease.reset();
    core_.store().DeleteRetry(g.name, existing->due_ms, existing->id);
  }
  if (!count_attempt) deliveries -= 1;  // given back unprocessed: does not count

  if (count_attempt && deliveries > max_reconsume) {
    DeadLetter(g,
               existing != nullptr ? existing->Source()
                                   : storage::Location{ref.topic, ref.queue, ref.offset},
               ref.topic, ref.queue, ref.offset, deliveries);
    if (existing != nullptr) g.retries.erase(existing->id);
    return true;
  }
  if (existing == nullptr) {
    RetryEntry entry;
    entry.id = groups_.NewRetryId();
    entry.record = storage::RetryRecord{ref.topic,  ref.queue,     ref.offset,
                                        deliveries, max_reconsume, std::nullopt};
    existing = &g.retries.emplace(entry.id, std::move(entry)).first->second;
  }
  existing->record.delivery_count = deliveries;
  existing->record.max_reconsume = max_reconsume;
  const int64_t wait = count_attempt ? (delay_ms != 0 ? delay_ms : BackoffMs(deliveries)) : 0;
  int64_t due = core_.NowMs() + wait;
  // A redelivery given back unprocessed keeps its place: due when it was,
  // not behind the later messages of its queue given back meanwhile (a
  // consumer shutting down gives back what it held, and a pull it had in
  // flight may have taken some of that again before its goodbye).
  if (!count_attempt && redelivery) due = std::min(due, existing->due_ms);
  ScheduleRetry(g, *existing, due);
  core_.counters().redelivery_scheduled++;
  return false;
}

void Delivery::Redeliver(GroupState& g, const storage::Location& as_known,
                         const storage::Location& source) {
  RetryEntry entry;
  entry.id = groups_.NewRetryId();
  entry.record =
      storage::RetryRecord{as_known.topic, as_known.queue, as_known.offset, 0, 0, source};
  RetryEntry& stored = g.retries.emplace(entry.id, std::move(entry)).first->second;
  stored.due_ms = core_.NowMs();
  core_.store().PutRetry(g.name, stored.due_ms, stored.id, stored.record);
  // The copy it reads from is written in this same round: deliverable only
  // once that is on disk.
  core_.OnDurable([this, group = g.name, id = stored.id](const Status& s) {
    GroupState* g = groups_.Find(group);
    if (!s.ok() || g == nullptr) return;
    auto e = g->retries.find(id);
    if (e != g->retries.end() && !e->second.lease) g->due.emplace(e->second.due_ms, id);
  });
}

void Delivery::ScheduleRetry(GroupState& g, RetryEntry& entry, int64_t due_ms) {
  entry.due_ms = due_ms;
  core_.store().PutRetry(g.name, due_ms, entry.id, entry.record);
  g.due.emplace(due_ms, entry.id);
}

void Delivery::DeadLetter(GroupState& g, const storage::Location& source, const std::string& topic,
                          uint32_t queue, uint64_t offset, uint32_t delivery_count) {
  auto stored = Read(source);
  if (!stored.ok()) {
    Logger("broker")->warn(
        "group '{}': {}/{}/{} failed {} times but is gone (retention); "
        "nothing to dead-letter",
        g.name, topic, queue, offset, delivery_count);
    return;
  }
  storage::MessageView m = stored->body.message;  // views into the log; Append copies
  const std::string dlq = DeadLetterTopic(g.name);
  auto t = topics_.GetOrCreate(dlq, true, 1);
  if (!t.ok()) return;
  const std::string queue_s = std::to_string(queue), offset_s = std::to_string(offset),
                    count_s = std::to_string(delivery_count);
  // A message resent from the dead-letter queue before carries the last
  // round's notes; this round's replace them.
  std::erase_if(m.properties,
                [](const auto& p) { return p.first.starts_with(property::kDeadLetterPrefix); });
  m.properties.emplace_back(property::kDeadLetterGroup, g.name);
  m.properties.emplace_back(property::kDeadLetterTopic, topic);
  m.properties.emplace_back(property::kDeadLetterQueue, queue_s);
  m.properties.emplace_back(property::kDeadLetterOffset, offset_s);
  m.properties.emplace_back(property::kDeadLetterDeliveries, count_s);
  m.topic = dlq;
  m.stored_ms = core_.NowMs();
  topics_.Append(**t, 0, m);
  core_.counters().dead_lettered++;
  g.dead_lettered++;
  Logger("broker")->warn("group '{}': message {} ({}/{}/{}) failed {} deliveries; moved to '{}'",
                         g.name, m.id, topic, queue, offset, delivery_count, dlq);
}

void Delivery::Tick(SteadyTime now) {
  auto& deadlines = groups_.lease_deadlines();
  while (!deadlines.empty() && deadlines.begin()->first <= now && !core_.storage_failed()) {
    FailLease(deadlines.begin()->second, true, 0, 0);
  }
  TickParked(now);
  if (now >= next_member_sweep_) {
    next_member_sweep_ = now + std::chrono::seconds(1);
    SweepIdleMembers(now);
  }
  ServeHandoffs(now);
}

void Delivery::SweepIdleMembers(SteadyTime now) {
  const auto idle = core_.options().max_long_poll + core_.options().client_timeout;
  std::set<std::string> swept;
  for (auto& [name, g] : groups_.all()) {
    for (auto& [topic, sub] : g.subscriptions) {
      std::vector<std::string> gone;
      for (const auto& [member, m] : sub.members) {
        if (now - m.seen > idle && !parked_by_client_.contains(member)) gone.push_back(member);
      }
      for (const std::string& member : gone) {
        LeaveOwners(sub, topic, member);
        groups_.NoteHandoff(name);
        auto named = member_names_.find(member);
        LogMembers(g, topic, sub, named != member_names_.end() ? named->second : "a consumer",
                   "left (no pull for " + std::to_string(idle.count() / 1000) + " s)");
        swept.insert(member);
      }
    }
  }
  // A name is kept while its client is a member anywhere (an unregistered
  // client is never released, so this is where its name goes).
  for (const auto& [name, g] : groups_.all()) {
    for (const auto& [topic, sub] : g.subscriptions) {
      for (auto it = swept.begin(); it != swept.end();) {
        it = sub.members.contains(*it) ? swept.erase(it) : std::next(it);
      }
    }
  }
  for (const std::string& member : swept) member_names_.erase(member);
}

void Delivery::LeaveAllQueues(const std::string& routing_id, std::string_view why) {
  auto named = member_names_.find(routing_id);
  if (named == member_names_.end()) return;  // never joined any topic's consumers
  const std::string who = named->second;
  member_names_.erase(named);
  // Its queues go to the other members (served once it let go of them).
  for (auto& [name, g] : groups_.all()) {
    for (auto& [topic, sub] : g.subscriptions) {
      if (!LeaveOwners(sub, topic, routing_id)) continue;
      groups_.NoteHandoff(name);
      LogMembers(g, topic, sub, who, "left (" + std::string(why) + ")");
    }
  }
}

void Delivery::LogMembers(const GroupState& g, const std::string& topic, const Subscription& sub,
                          const std::string& who, std::string_view what) const {
  size_t owned = 0;
  for (const QueueCursor& c : sub.queues) owned += !c.owner.empty();
  const size_t n = sub.members.size();
  const std::string now = n == 0   ? "no consumer reads it here now"
                          : n == 1 ? "1 consumer owns its " + std::to_string(owned) + " queues here"
                                   : std::to_string(n) + " consumers share its " +
                                         std::to_string(owned) + " queues here";
  Logger("broker")->info("consumer group '{}' on '{}': {} {}; {}", g.name, topic, who, what, now);
}

void Delivery::ServeHandoffs(SteadyTime now) {
  for (const std::string& group : groups_.TakeHandoffs()) {
    auto it = parked_by_group_.find(group);
    if (it == parked_by_group_.end()) continue;
    const std::set<uint64_t> ids = it->second;  // serving unparks
    for (uint64_t id : ids) TryServeParked(id, now);
  }
}

void Delivery::ReleaseClient(const std::string& routing_id, const std::string& shown_as,
                             bool failed) {
  std::vector<uint64_t> held;
  for (const auto& [lease_id, ref] : groups_.leases()) {
    if (ref.client == routing_id) held.push_back(lease_id);
  }
  // In the order they were handed out: the redeliveries are then scheduled,
  // and delivered, in that order too (keeps a key's messages in order).
  std::sort(held.begin(), held.end());
  for (uint64_t id : held) FailLease(id, failed, 0, 0);
  LeaveAllQueues(routing_id, failed ? "went silent" : "said goodbye");
  announced_max_reconsume_.erase(routing_id);
  if (!held.empty()) {
    Logger("broker")->info("client {} {}: {} leased messages {}", shown_as,
                           failed ? "went silent" : "said goodbye", held.size(),
                           failed ? "scheduled for redelivery" : "given back");
  }
  ReleaseParked(routing_id, failed);
}

}  // namespace txmq::broker
