// The server's requests that depend on placement (placement_gate.h): sends,
// halves and topic creation wait for their topic's placement or go to the
// group serving their queue; route requests say where each queue is
// served.
#include <algorithm>
#include <set>

#include "broker/src/message_check.h"
#include "broker/src/server.h"
#include "protocol/src/message_codec.h"
#include "txmq/names.h"

namespace txmq::broker {

namespace {

using E = wire::Envelope;

std::string_view View(capnp::Text::Reader text) { return {text.begin(), text.size()}; }

// Calls `fn(topic, key)` for every topic a request names, with its
// message's key, until `fn` returns true (then true). Views into the
// frame: nothing is copied on the send path.
template <typename Fn>
bool AnyTopicOf(E::Reader env, Fn&& fn) {
  switch (env.which()) {
    case E::SEND: {
      auto m = env.getSend().getMessage();
      return fn(View(m.getTopic()), View(m.getKey()));
    }
    case E::SEND_HALF:
      for (auto m : env.getSendHalf().getMessages()) {
        if (fn(View(m.getTopic()), View(m.getKey()))) return true;
      }
      return false;
    case E::CREATE_TOPIC:
      return fn(View(env.getCreateTopic().getTopic()), std::string_view());
    default:
      return false;
  }
}

}  // namespace

bool Server::HoldForPlacement(const RequestContext& ctx, wire::Envelope::Reader env,
                              wire::Frame& frame, int fd) {
  if (!placement_.active()) return false;
  // A send places its topic only where a send may create one; a half's
  // topic is created when it commits, and a create is one.
  const bool may_place = env.which() != E::SEND || options_.auto_create_topics;
  uint32_t asked_queues = options_.default_queues;
  if (env.which() == E::CREATE_TOPIC && env.getCreateTopic().getQueues() != 0) {
    asked_queues = env.getCreateTopic().getQueues();
  }
  // True once the request was answered or parked.
  return AnyTopicOf(env, [&](std::string_view topic, std::string_view key) {
    // Bad names are the handlers' to refuse; they must not be placed.
    if (!ValidateName("topic", topic).ok() || asked_queues > kMaxQueues) return false;
    const TopicState* here = topics_.Find(topic);
    const uint32_t queues_here = here ? static_cast<uint32_t>(here->queues.size()) : 0;
    if (!may_place && queues_here == 0 && !placement_.Known(topic)) {
      return false;  // the handler answers NOT_FOUND, as a single broker would
    }
    auto decision = placement_.Admit(topic, key, queues_here, asked_queues);
    using Kind = PlacementGate::Decision::Kind;
    if (decision.kind == Kind::kServe) return false;
    // A resend of a message this group stored (its answer lost, the queue
    // moved since) is answered here with what was stored: sent on to the
    // queue's new group it would be stored twice, the dedup window being
    // each group's. A WRONG_GROUP answer therefore also says "not stored
    // here", which a producer may rely on before it tries another group.
    if (decision.status.code() == StatusCode::kWrongGroup && env.which() == E::SEND) {
      const std::string id = wire::ToString(env.getSend().getMessage().getId());
      auto hit = dedup_.Find(id);
      // Answered here: the handler would look again, and the id may have
      // left the window in between (then it would be stored here).
      if (hit && hit->first.topic == topic) {
        sends_.AnswerDuplicate(ctx, id, *hit);
        return true;
      }
    }
    if (decision.kind == Kind::kPark) {
      ParkRequest(ctx, std::string(topic), frame, fd);
    } else if (decision.status.code() == StatusCode::kWrongGroup) {
      auto reply = Core::NewReply(ctx);
      wire::SetWrongGroup(reply.envelope(), decision.status.message(), decision.leader_url);
      core_.Reply(ctx, reply);
    } else {
      core_.ReplyError(ctx, decision.status);
    }
    return true;
  });
}

void Server::ParkRequest(const RequestContext& ctx, const std::string& topic, wire::Frame& frame,
                         int fd) {
  // Served again from the top once the topic is placed: rights, limits
  // and the gate decide afresh.
  auto held = std::make_shared<wire::Frame>(std::move(frame));
  placement_.Park(
      topic, core_.SteadyNow(),
      [this, routing_id = ctx.routing_id, key = ctx.key, fd, console_peer = ctx.console_peer,
       request_id = ctx.request_id, held](const Status& s) {
        if (s.ok()) return Dispatch(routing_id, key, fd, *held, console_peer);
        core_.ReplyError({routing_id, request_id, nullptr}, s);
      });
}

void Server::HandleRoute(const RequestContext& ctx, wire::RouteRequest::Reader request,
                         wire::Frame& frame, int fd) {
  const std::string topic = wire::ToString(request.getTopic());
  if (Status s = ValidateName("topic", topic); !s.ok()) return core_.ReplyError(ctx, s);
  const uint32_t queues = request.getQueues() == 0 ? options_.default_queues : request.getQueues();
  if (queues > kMaxQueues) {
    return core_.ReplyError(
        ctx, Status::InvalidArgument("queues " + std::to_string(queues) + " must be 1-" +
                                     std::to_string(kMaxQueues) + " (0 = broker default)"));
  }
  auto reply = Core::NewReply(ctx);
  auto route = reply.envelope().initRouteOk();
  route.setTopic(topic);
  if (!placement_.active()) {
    // One broker serves every queue: group "", its own URL ("" = the
    // broker you asked).
    const TopicState* here = topics_.Find(topic);
    const uint32_t n = here ? static_cast<uint32_t>(here->queues.size()) : queues;
    route.initQueues(n);
    return core_.Reply(ctx, reply);
  }
  std::shared_ptr<const cluster::TopicPlacement> placed = placement_.Known(topic);
  if (!placed) {
    if (!request.getCreate()) {
      return core_.ReplyError(
          ctx, Status::NotFound("topic " + topic + " is not placed on the cluster's groups"));
    }
    const TopicState* here = topics_.Find(topic);
    auto found =
        placement_.Lookup(topic, here ? static_cast<uint32_t>(here->queues.size()) : queues);
    if (!found.error.ok()) {
      return core_.ReplyError(
          ctx,
          Status::Unavailable("topic " + topic + " cannot be placed: " + found.error.ToString()));
    }
    if (!found.placement) return ParkRequest(ctx, topic, frame, fd);
    placed = found.placement;
  }
  route.setAnsweredBy(options_.replicator->group());
  auto out = route.initQueues(placed->queue_count);
  for (uint32_t q = 0; q < placed->queue_count; ++q) {
    out[q].setGroup(placed->groups[q]);
    out[q].setLeaderUrl(options_.replicator->LeaderUrlOf(placed->groups[q]));
    const std::string_view from = placed->DrainingFrom(q);
    auto owed = from.empty()
                    ? std::nullopt
                    : options_.replicator->DrainPending({topic, q, placed->GenerationOf(q)});
    if (!from.empty() && (!owed || !owed->empty())) {  // not drained for every group yet
      out[q].setDrainingFrom(std::string(from));
      out[q].setDrainingLeaderUrl(options_.replicator->LeaderUrlOf(std::string(from)));
    }
  }
  core_.Reply(ctx, reply);
}

void Server::TickMoves(SteadyTime now) {
  if (!placement_.active() || now < next_move_tick_) return;
  next_move_tick_ = now + std::chrono::milliseconds(200);
  if (const uint64_t version = placement_.version(); version != placement_version_seen_) {
    placement_version_seen_ = version;
    std::set<std::string> every;
    for (const auto& [name, topic] : topics_.all()) every.insert(name);
    delivery_.OnTopicsAdvanced(every);
  }
  // A consumer group owes nothing of a queue once it finished every
  // message stored there (its floor is the queue's end, the open round
  // included: sends admitted before the move are in it) and has no
  // redelivery of it scheduled. A group that never read the topic here
  // owes nothing: the group the queue went to does not wait for it. Every
  // queue that moved away is reported, from the node's map, not only
  // those of topics this group holds: one that never stored a message of
  // the topic owes nothing and must say so, or the new group waits
  // forever.
  std::map<cluster::QueueGeneration, std::vector<std::string>> reports;
  for (const cluster::QueueGeneration& moved : options_.replicator->MovedAway()) {
    std::vector<std::string>& pending = reports[moved];
    const TopicState* topic = topics_.Find(moved.topic);
    const auto* readers = groups_.ReadersOf(moved.topic);
    if (topic == nullptr || readers == nullptr || moved.queue >= topic->queues.size()) continue;
    const uint32_t q = moved.queue;
    for (GroupState* g : *readers) {
      auto sub = g->subscriptions.find(moved.topic);
      if (sub == g->subscriptions.end() || q >= sub->second.queues.size()) continue;
      bool owes = sub->second.queues[q].floor() < topic->queues[q].next_offset;
      for (auto it = g->retries.begin(); !owes && it != g->retries.end(); ++it) {
        owes = it->second.record.topic == moved.topic && it->second.record.queue == q;
      }
      if (owes) pending.push_back(g->name);
    }
    std::sort(pending.begin(), pending.end());
  }
  options_.replicator->ReportDrains(std::move(reports));
}

}  // namespace txmq::broker
