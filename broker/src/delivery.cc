#include "broker/src/delivery.h"

#include "broker/src/clients.h"
#include "broker/src/queue_owners.h"
#include "broker/src/stored_message.h"

#include <algorithm>
#include <memory>

#include "protocol/src/log.h"
#include "protocol/src/message_codec.h"
#include "storage/src/records.h"
#include "txmq/names.h"

namespace txmq::broker {

namespace {

// One pull answers with at most this many bytes of records (but always at
// least one message), so a reply stays well below any frame limit.
constexpr size_t kMaxPullBytes = 4 * 1024 * 1024;
constexpr uint32_t kDefaultPullMessages = 32;
constexpr size_t kMaxPullTopics = 64;
constexpr auto kMinVisibility = std::chrono::milliseconds(100);
constexpr auto kMaxVisibility = std::chrono::hours(12);

bool Contains(const std::vector<std::string>& v, std::string_view s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

}  // namespace

void Delivery::HandlePull(const RequestContext& ctx, wire::PullRequest::Reader request) {
  PullSpec spec;
  spec.group = wire::ToString(request.getGroup());
  if (Status s = ValidateName("group", spec.group); !s.ok()) return core_.ReplyError(ctx, s);
  auto topics = request.getTopics();
  if (topics.size() == 0 || topics.size() > kMaxPullTopics) {
    return core_.ReplyError(
        ctx, Status::InvalidArgument("a pull names " + std::to_string(topics.size()) +
                                     " topics; it must name 1-" + std::to_string(kMaxPullTopics)));
  }
  for (auto t : topics) {
    spec.topics.push_back(wire::ToString(t));
    if (Status s = ValidateNameOrSystem("topic", spec.topics.back()); !s.ok()) {
      return core_.ReplyError(ctx, s);
    }
  }
  const BrokerOptions& o = core_.options();
  uint32_t max = request.getMaxMessages();
  spec.max_messages = std::min(max == 0 ? kDefaultPullMessages : max, o.max_pull_messages);
  spec.visibility = ClampVisibility(request.getVisibilityTimeoutMs());
  spec.from_latest = request.getStartFromLatest();
  spec.client = ctx.routing_id;
  spec.shown_as = ctx.client != nullptr ? ctx.client->id : "an unregistered client";
  spec.instance = ctx.client != nullptr ? ctx.client->instance : ctx.routing_id;
  auto wait = std::min<std::chrono::milliseconds>(std::chrono::milliseconds(request.getWaitMs()),
                                                  o.max_long_poll);

  if (groups_.Find(spec.group) == nullptr) {
    if (Status s = groups_.AdmitNew(spec.group, ctx); !s.ok()) return core_.ReplyError(ctx, s);
    groups_.Create(spec.group, ctx.creator());
  }

  const SteadyTime now = core_.SteadyNow();
  Status held;
  std::vector<Item> items = Collect(spec, now, &held);
  if (items.empty() && !held.ok()) return core_.ReplyError(ctx, held);
  if (!items.empty() || wait.count() == 0) {
    return ReplyItems(ctx.routing_id, ctx.request_id, items);
  }
  if (Status s = core_.limits().AdmitPark(ctx.routing_id); !s.ok()) {
    return core_.ReplyError(ctx, s);
  }
  Park(Parked{ctx.routing_id, ctx.request_id, std::move(spec), now + wait});
}

std::chrono::milliseconds Delivery::ClampVisibility(uint32_t requested_ms) const {
  auto visibility = std::chrono::milliseconds(requested_ms);
  if (visibility.count() == 0) visibility = core_.options().default_visibility_timeout;
  return std::clamp<std::chrono::milliseconds>(visibility, kMinVisibility, kMaxVisibility);
}

std::vector<Delivery::Item> Delivery::Collect(const PullSpec& spec, SteadyTime now, Status* held) {
  GroupState& g = groups_.Get(spec.group);
  // The asker is a member of each topic's consumers from now on: the
  // queues it may take are those it owns (queue_owners.h).
  for (const std::string& name : spec.topics) {
    TopicState* t = topics_.Find(name);
    if (t == nullptr) continue;
    Subscription* sub = groups_.Subscribe(g, *t, spec.from_latest);
    if (sub == nullptr) continue;
    const std::vector<uint32_t>& served = topics_.Served(*t);
    // A newcomer only takes queues from the others; a change of the served
    // queues may give others some, whose parked pulls are then served.
    if (served != sub->shared) groups_.NoteHandoff(g.name);
    const bool joining = !sub->members.contains(spec.client);
    JoinOwners(*sub, name, {.client = spec.client, .instance = spec.instance}, now, served);
    if (joining) {
      member_names_[spec.client] = spec.shown_as;
      LogMembers(g, name, *sub, spec.shown_as, "joined");
    }
  }
  std::vector<Item> out;
  size_t bytes = 0;
  Status unused;
  CollectRetries(g, spec, now, &out, &bytes, held ? held : &unused);
  CollectFresh(g, spec, now, &out, &bytes, held ? held : &unused);
  core_.counters().delivered += out.size();
  return out;
}

void Delivery::CollectRetries(GroupState& g, const PullSpec& spec, SteadyTime now,
                              std::vector<Item>* out, size_t* bytes, Status* held) {
  const int64_t now_ms = core_.NowMs();
  for (auto it = g.due.begin(); it != g.due.end() && it->first <= now_ms &&
                                out->size() < spec.max_messages && *bytes < kMaxPullBytes;) {
    RetryEntry& e = g.retries.at(it->second);
    const storage::RetryRecord& r = e.record;
    const QueueCursor* owned_by = groups_.CursorOf(g, r.topic, r.queue);
    if (!Contains(spec.topics, r.topic) ||
        (owned_by != nullptr && !MayTake(*owned_by, spec.client))) {
      ++it;
      continue;
    }
    auto stored = Read(e.Source());
    if (!stored.ok() && stored.status().code() != StatusCode::kNotFound) {
      *held = stored.status();  // damaged: it stays due, never served as valid
      ++it;
      continue;
    }
    if (!stored.ok()) {
      Logger("broker")->warn(
          "group '{}': redelivery of {}/{}/{} dropped, the message is gone "
          "(retention): {}",
          g.name, r.topic, r.queue, r.offset, stored.status().ToString());
      core_.store().DeleteRetry(g.name, e.due_ms, e.id);
      it = g.due.erase(it);
      g.retries.erase(e.id);
      continue;
    }
    Lease lease{groups_.NewLeaseId(), spec.client, now + spec.visibility, r.delivery_count + 1};
    groups_.AddLease(
        LeaseRef{&g, nullptr, r.offset, e.id, r.topic, r.queue, spec.client, lease.deadline},
        lease.lease_id);
    *bytes += stored->body.message.body.size();
    out->push_back(Item{std::move(stored.value()), r.topic, r.queue, r.offset, lease.delivery_count,
                        e.id, lease.lease_id});
    e.lease = lease;
    it = g.due.erase(it);
  }
}

void Delivery::CollectFresh(GroupState& g, const PullSpec& spec, SteadyTime now,
                            std::vector<Item>* out, size_t* bytes, Status* held) {
  storage::BrokerStore& store = core_.store();
  for (const std::string& name : spec.topics) {
    TopicState* t = topics_.Find(name);
    if (t == nullptr) continue;  // not created yet: a long poll waits for it
    Subscription* sub = groups_.Subscribe(g, *t, spec.from_latest);
    const auto nq = static_cast<uint32_t>(sub->queues.size());
    TopicPlacementSource* placement = topics_.placement();
    for (uint32_t k = 0; k < nq && out->size() < spec.max_messages && *bytes < kMaxPullBytes; ++k) {
      const uint32_t q = (sub->next_queue + k) % nq;
      QueueCursor& c = sub->queues[q];
      if (!MayTake(c, spec.client)) continue;
      // A queue that moved here: its older messages first (on the group
      // it left), so that a key's order holds across the move.
      if (placement != nullptr && placement->HeldBack(name, q, g.name)) continue;
      const QueueState& qs = t->queues[q];
      if (c.next < qs.min_offset) {  // retention deleted what this group had not read
        c.next = qs.min_offset;
        groups_.MarkDirty(c);
      }
      for (; c.next < qs.visible_end && out->size() < spec.max_messages && *bytes < kMaxPullBytes;
           ++c.next) {
        auto stored = store.ReadMessage(t->id, q, c.next);
        if (!stored.ok() && stored.status().code() != StatusCode::kNotFound) {
          // Damaged: not served, not skipped; this queue waits here.
          *held =
              Status(stored.status().code(), "group '" + g.name + "': " + name + "/" +
                                                 std::to_string(q) + "/" + std::to_string(c.next) +
                                                 " cannot be read: " + stored.status().message());
          break;
        }
        if (!stored.ok()) continue;  // a gap (a resent dead letter, a repaired loss)
        const uint64_t offset = c.next;
        Lease lease{groups_.NewLeaseId(), spec.client, now + spec.visibility, 1};
        c.leased.emplace(offset, lease);
        groups_.AddLease(LeaseRef{&g, &c, offset, 0, name, q, spec.client, lease.deadline},
                         lease.lease_id);
        *bytes += stored->body.message.body.size();
        out->push_back(Item{std::move(stored.value()), name, q, offset, 1, 0, lease.lease_id});
      }
    }
    sub->next_queue = (sub->next_queue + 1) % nq;
  }
}

Result<storage::StoredMessage> Delivery::Read(const storage::Location& where) {
  const TopicState* topic = topics_.Find(where.topic);
  if (topic == nullptr) {
    return Status::NotFound("topic '" + where.topic + "' no longer exists");
  }
  return core_.store().ReadMessage(topic->id, where.queue, where.offset);
}

void Delivery::ReplyItems(const std::string& routing_id, uint64_t request_id,
                          const std::vector<Item>& items) {
  wire::OutFrame reply(request_id);
  auto list = reply.envelope().initPullOk().initMessages(static_cast<unsigned>(items.size()));
  for (unsigned i = 0; i < items.size(); ++i) {
    const Item& item = items[i];
    storage::MessageView m = item.stored.body.message;
    auto d = list[i];
    m.topic = item.topic;  // a dead letter's record names its own topic
    FillWireMessage(m, 0, d.initMessage());
    d.setQueue(item.queue);
    d.setOffset(item.offset);
    d.setDeliveryCount(item.delivery_count);
    d.setStoredMs(m.stored_ms);
    auto receipt = d.initReceipt();
    receipt.setTopic(item.topic);
    receipt.setQueue(item.queue);
    receipt.setOffset(item.offset);
    receipt.setRetryId(item.retry_id);
    receipt.setLeaseId(item.lease_id);
  }
  if (!core_.Deliver(routing_id, reply)) {
    // The asker is gone (a long poll outlived its client): nobody holds
    // these, so they are given back at once, not counted as a delivery,
    // instead of waiting out the visibility timeout.
    for (const Item& item : items) FailLease(item.lease_id, /*count_attempt=*/false, 0, 0);
    LeaveAllQueues(routing_id, "could not be reached");  // nor does it own queues any more
  }
}

}  // namespace txmq::broker
