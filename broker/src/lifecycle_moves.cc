// txmqctl topic move: a queue of a placed topic goes to another broker
// group (DESIGN.md "Moving a queue between groups"). The move is a write
// of the topic's placement in etcd, made by the placement thread while
// the request waits here parked (the core never waits for etcd); the
// reply and the audit line come once etcd has it, or with why it did not.
#include "broker/src/lifecycle_service.h"
#include "protocol/src/log.h"
#include "protocol/src/message_codec.h"
#include "txmq/names.h"

namespace txmq::broker {

void LifecycleService::MoveQueue(const Call& call, wire::QueueMoveRequest::Reader request) {
  constexpr std::string_view kAction = "queue-move";
  const std::string topic = wire::ToString(request.getTopic());
  const uint32_t queue = request.getQueue();
  const std::string to = wire::ToString(request.getToGroup());
  const std::string object = "topic=" + topic + " queue=" + std::to_string(queue) + " to=" + to;
  if (Status s = Admit(call, kAction); !s.ok()) return Refuse(call, kAction, object, s);
  if (Status s = ValidateName("topic", topic); !s.ok()) return Refuse(call, kAction, object, s);
  if (to.empty()) {
    return Refuse(call, kAction, object, Status::InvalidArgument("name the group to move to"));
  }
  if (!d_.placement.active() || d_.replicator == nullptr) {
    return Refuse(call, kAction, object,
                  Status::FailedPrecondition("this broker is in no cluster: it serves every "
                                             "queue itself, and queues move only between groups"));
  }
  auto answer = [this, call](const cluster::TopicPlacement& p, const std::string& topic,
                             uint32_t queue) {
    auto reply = std::make_shared<wire::OutFrame>(call.ctx.request_id);
    auto ok = reply->envelope().initLifecycleOk();
    ok.setDryRun(call.dry_run);
    auto m = ok.initQueueMoved();
    m.setTopic(topic);
    m.setQueue(queue);
    m.setFromGroup(std::string(p.DrainingFrom(queue)));
    m.setToGroup(p.groups[queue]);
    m.setGeneration(p.GenerationOf(queue));
    d_.core.Reply(call.ctx, *reply);
  };
  if (call.dry_run) {
    // What the move would write, from this node's last read of etcd,
    // which may still refuse it (a group it does not know, a previous
    // move still draining). The move itself checks against etcd.
    auto placed = d_.placement.Known(topic);
    if (!placed) {
      return Refuse(call, kAction, object,
                    Status::NotFound("topic " + topic +
                                     " is not placed on the cluster's groups (as this node "
                                     "last read etcd)"));
    }
    if (Status s = placed->CheckMove(topic, queue, to); !s.ok()) {
      return Refuse(call, kAction, object, s);
    }
    return answer(placed->Moved(queue, to), topic, queue);
  }
  const uint64_t ticket = d_.replicator->RequestMove(topic, queue, to);
  d_.placement.ParkMove(ticket, d_.core.SteadyNow(),
                        [this, call, object, topic, queue, answer,
                         action = std::string(kAction)](Result<cluster::TopicPlacement> moved) {
                          if (!moved.ok()) return Refuse(call, action, object, moved.status());
                          Audit(call, action, object, "applied");
                          answer(*moved, topic, queue);
                        });
}

}  // namespace txmq::broker
