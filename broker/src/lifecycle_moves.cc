// txmqctl topic move: a queue of a placed topic goes to another broker
// group (DESIGN.md "Moving a queue between groups"), or stops waiting for
// the group it left (--release); and the end of txmqctl topic delete in a
// cluster, the deletion of the topic's placement. Each is a write
// of the topic's placement in etcd, made by the placement thread while
// the request waits here parked (the core never waits for etcd); the
// reply and the audit line come once etcd has it, or with why it did not.
#include "broker/src/lifecycle_service.h"
#include "protocol/src/log.h"
#include "protocol/src/message_codec.h"
#include "txmq/names.h"

namespace txmq::broker {

void LifecycleService::MoveQueue(const Call& call, wire::QueueMoveRequest::Reader request) {
  const bool rebalance = request.getRebalance();
  const bool release = request.getRelease();
  const std::string action =
      rebalance ? "topic-rebalance" : (release ? "queue-release" : "queue-move");
  const std::string topic = wire::ToString(request.getTopic());
  const uint32_t queue = rebalance ? cluster::kEveryQueue : request.getQueue();
  const std::string to = wire::ToString(request.getToGroup());
  // Audit tokens: the names are checked after a refusal may be audited.
  const std::string object = "topic=" + AuditToken(topic) +
                             (rebalance ? "" : " queue=" + std::to_string(queue)) +
                             (rebalance || release ? "" : " to=" + AuditToken(to));
  if (Status s = Admit(call, action); !s.ok()) return Refuse(call, action, object, s);
  if (Status s = ValidateName("topic", topic); !s.ok()) return Refuse(call, action, object, s);
  if (rebalance && release) {
    return Refuse(call, action, object,
                  Status::InvalidArgument("a release names one queue; not with a rebalance"));
  }
  if (release && !to.empty()) {
    return Refuse(
        call, action, object,
        Status::InvalidArgument("a release moves nothing: no group to move to (" + to + ")"));
  }
  if (!rebalance && !release && to.empty()) {
    return Refuse(call, action, object, Status::InvalidArgument("name the group to move to"));
  }
  if (!d_.placement.active() || d_.replicator == nullptr) {
    return Refuse(call, action, object,
                  Status::FailedPrecondition("this broker is in no cluster: it serves every "
                                             "queue itself, and queues move only between groups"));
  }
  // Checked and (unless a dry run) written against etcd by the placement
  // thread; this waits parked, the core goes on.
  const uint64_t ticket = d_.replicator->RequestMove({.topic = topic,
                                                      .queue = queue,
                                                      .to = to,
                                                      .release = release,
                                                      .force = call.force,
                                                      .write = !call.dry_run});
  d_.placement.ParkMove(
      ticket, d_.core.SteadyNow(),
      [this, call, object, topic, action, rebalance, release](Result<cluster::QueueMoves> moved) {
        if (!moved.ok()) return Refuse(call, action, object, moved.status());
        if (!call.dry_run) {
          Audit(call, action, object,
                release ? "applied (no longer waiting for group " + moved->released_from + ")"
                        : "applied (" + std::to_string(moved->moved.size()) + " queues moved)");
        }
        wire::OutFrame reply(call.ctx.request_id);
        auto ok = reply.envelope().initLifecycleOk();
        ok.setDryRun(call.dry_run);
        auto fill = [&](wire::QueueMove::Builder m, uint32_t q) {
          const cluster::TopicPlacement& p = moved->placement;
          m.setTopic(topic);
          m.setQueue(q);
          m.setFromGroup(release ? moved->released_from : std::string(p.DrainingFrom(q)));
          m.setToGroup(p.groups[q]);
          m.setGeneration(p.GenerationOf(q));
        };
        if (rebalance) {
          auto list = ok.initQueuesMoved(static_cast<unsigned>(moved->moved.size()));
          for (unsigned i = 0; i < moved->moved.size(); ++i) fill(list[i], moved->moved[i]);
        } else {
          fill(ok.initQueueMoved(), moved->moved.front());
        }
        d_.core.Reply(call.ctx, reply);
      });
}

void LifecycleService::ForgetPlacement(const Call& call, const std::string& topic) {
  static constexpr std::string_view kAction = "topic-placement-delete";
  const std::string object = "topic=" + AuditToken(topic);
  if (Status s = Admit(call, kAction); !s.ok()) return Refuse(call, kAction, object, s);
  if (Status s = ValidateName("topic", topic); !s.ok()) return Refuse(call, kAction, object, s);
  if (!d_.placement.active() || d_.replicator == nullptr) {
    return Refuse(call, kAction, object,
                  Status::FailedPrecondition("this broker is in no cluster: a topic has no "
                                             "placement to delete"));
  }
  if (!call.dry_run && d_.topics.Find(topic) != nullptr) {
    // Deleted and created again since (a producer still sending to it),
    // or never deleted here: its queues would outlive their placement. (A
    // dry run of topic delete deleted nothing, so it finds the topic.)
    return Refuse(call, kAction, object,
                  Status::FailedPrecondition(
                      "broker group " + d_.replicator->group() + " holds topic '" + topic +
                      "': delete it (and stop what sends to it) before its placement"));
  }
  const uint64_t ticket =
      d_.replicator->RequestMove({.topic = topic, .write = !call.dry_run, .forget = true});
  d_.placement.ParkMove(
      ticket, d_.core.SteadyNow(), [this, call, object](Result<cluster::QueueMoves> forgotten) {
        if (!forgotten.ok()) {
          return Refuse(call, kAction, object, forgotten.status());
        }
        const uint32_t queues = forgotten->placement.queue_count;
        if (!call.dry_run) {
          Audit(call, kAction, object, "applied (" + std::to_string(queues) + " queues)");
        }
        wire::OutFrame reply(call.ctx.request_id);
        auto ok = reply.envelope().initLifecycleOk();
        ok.setDryRun(call.dry_run);
        ok.setPlacementForgotten(queues);
        d_.core.Reply(call.ctx, reply);
      });
}

}  // namespace txmq::broker
