// Lease extension: a consumer keeps holding messages it has not run yet
// (waiting behind an earlier message of their key, or for a retry in
// place), so the broker does not hand them to another consumer meanwhile.
//
// A plain extension moves the deadline to now + visibility. A `failed`
// extension is a nack that keeps the message where it is: the failed
// delivery is counted exactly as a nack would count it, and past the
// group's redelivery limit the message goes to the dead-letter topic as
// from a nack; otherwise the lease runs until the retry delay plus the
// visibility timeout, and the cursor floor stays on the message, so a
// broker restart delivers it (and what follows it) again in order.
#include <algorithm>

#include "broker/src/delivery.h"
#include "protocol/src/message_codec.h"
#include "txmq/names.h"

namespace txmq::broker {

namespace {

constexpr auto kMaxLease = std::chrono::hours(12);

struct Extension {
  wire::LeaseState state = wire::LeaseState::EXPIRED;
  uint32_t delivery_count = 0;
  uint32_t retry_after_ms = 0;
  uint32_t valid_for_ms = 0;
};

}  // namespace

void Delivery::HandleExtendLease(const RequestContext& ctx,
                                 wire::ExtendLeaseRequest::Reader request) {
  const bool failed = request.getFailed();
  // Only a failure can write (a dead letter); a plain extension is memory.
  if (failed) {
    if (Status s = core_.CheckWritable(); !s.ok()) return core_.ReplyError(ctx, s);
  }
  const std::string group = wire::ToString(request.getGroup());
  if (Status s = ValidateName("group", group); !s.ok()) return core_.ReplyError(ctx, s);
  const std::chrono::milliseconds visibility = ClampVisibility(request.getVisibilityTimeoutMs());
  const uint32_t requested_max = request.getMaxReconsumeTimes();
  if (failed) Announce(ctx, requested_max);

  const SteadyTime now = core_.SteadyNow();
  std::vector<Extension> results;
  bool dead_lettered = false;
  for (auto r : request.getReceipts()) {
    Extension& x = results.emplace_back();
    const LeaseRef* ref = MatchLease(groups_, group, r);
    // Expired (the timer may not have ended it yet), acked, or never issued.
    if (ref == nullptr || ref->deadline <= now) continue;
    if (ref->client != ctx.routing_id) {
      x.state = wire::LeaseState::NOT_HOLDER;
      continue;
    }
    // A consumer busy with what it holds is still one of the topic's.
    if (auto sub = ref->group->subscriptions.find(ref->topic);
        sub != ref->group->subscriptions.end()) {
      if (auto m = sub->second.members.find(ctx.routing_id); m != sub->second.members.end()) {
        m->second.seen = now;
      }
    }
    Lease& lease = groups_.LeaseOf(*ref);
    std::chrono::milliseconds wait{0};
    if (failed) {
      const uint32_t max = MaxReconsume(ctx.routing_id, requested_max);
      if (lease.delivery_count > max) {
        x.delivery_count = lease.delivery_count;
        x.state = wire::LeaseState::DEAD_LETTERED;
        dead_lettered = FailLease(r.getLeaseId(), true, 0, max) || dead_lettered;
        continue;
      }
      wait = std::chrono::milliseconds(request.getDelayMs() != 0 ? request.getDelayMs()
                                                                 : BackoffMs(lease.delivery_count));
      lease.delivery_count += 1;
      core_.counters().redelivery_scheduled++;
    }
    const auto valid_for = std::min<std::chrono::milliseconds>(wait + visibility, kMaxLease);
    groups_.ExtendLease(r.getLeaseId(), now + valid_for);
    x.state = wire::LeaseState::EXTENDED;
    x.delivery_count = lease.delivery_count;
    x.retry_after_ms = static_cast<uint32_t>(wait.count());
    x.valid_for_ms = static_cast<uint32_t>(valid_for.count());
  }

  auto fill = [results = std::move(results)](wire::Envelope::Builder env) {
    auto list = env.initExtendLeaseOk().initResults(static_cast<unsigned>(results.size()));
    for (unsigned i = 0; i < results.size(); ++i) {
      list[i].setState(results[i].state);
      list[i].setDeliveryCount(results[i].delivery_count);
      list[i].setRetryAfterMs(results[i].retry_after_ms);
      list[i].setValidForMs(results[i].valid_for_ms);
    }
  };
  if (!dead_lettered) {
    auto reply = Core::NewReply(ctx);
    fill(reply.envelope());
    return core_.Reply(ctx, reply);
  }
  // A dead letter is reported once it is on disk.
  core_.OnDurable([this, routing_id = ctx.routing_id, request_id = ctx.request_id,
                   fill = std::move(fill)](const Status& s) {
    if (!s.ok()) {
      return core_.ReplyError({routing_id, request_id, nullptr},
                              Status::Unavailable("not recorded: " + s.message()));
    }
    wire::OutFrame reply(request_id);
    fill(reply.envelope());
    core_.Reply(routing_id, reply);
  });
}

}  // namespace txmq::broker
