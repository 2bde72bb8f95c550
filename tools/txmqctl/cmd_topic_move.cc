// txmqctl topic move: a queue of a topic to another broker group of the
// cluster (DESIGN.md "Moving a queue between groups").
#include <iostream>

#include "protocol/src/message_codec.h"
#include "tools/txmqctl/ctl.h"
#include "tools/txmqctl/lifecycle_view.h"
#include "txmq/names.h"

namespace txmq::ctl {

namespace {

struct MoveArgs {
  std::string topic;
  uint32_t queue = 0;
  std::string to;
  bool dry_run = false;
};

int Move(Ctl& ctl, const MoveArgs& args) {
  if (Status s = ValidateName("topic", args.topic); !s.ok()) return ctl.Usage(s.message());
  if (args.to.empty()) return ctl.Usage("--to names the broker group the queue moves to");
  auto reply = CallLifecycle(ctl, args.dry_run, false, [&](wire::LifecycleRequest::Builder r) {
    auto m = r.initMoveQueue();
    m.setTopic(args.topic);
    m.setQueue(args.queue);
    m.setToGroup(args.to);
  });
  if (!reply.ok()) return ctl.Fail(reply.status());
  auto ok = reply->envelope().getLifecycleOk();
  auto moved = ok.getQueueMoved();
  const std::string from = wire::ToString(moved.getFromGroup());
  const std::string to = wire::ToString(moved.getToGroup());
  if (ctl.json()) {
    PrintJson({{"dry_run", ok.getDryRun()},
               {"topic", wire::ToString(moved.getTopic())},
               {"queue", moved.getQueue()},
               {"from", from},
               {"to", to},
               {"generation", moved.getGeneration()}});
    return kExitOk;
  }
  std::cout << (ok.getDryRun() ? "dry run: would move" : "moved") << " queue " << moved.getQueue()
            << " of topic '" << wire::ToString(moved.getTopic()) << "' from group " << from
            << " to group " << to << " (generation " << moved.getGeneration() << ")\n"
            << "sends of it go to " << to << "; " << from
            << " still delivers the messages it holds of it, and each consumer group reads " << to
            << "'s once it has read those\n";
  return kExitOk;
}

}  // namespace

void AddTopicMoveCommand(CLI::App& topic, Ctl& ctl, Runner& run) {
  auto args = std::make_shared<MoveArgs>();
  auto* move = topic.add_subcommand(
      "move",
      "Move one queue of a topic to another broker group of the cluster (audit-logged).\n"
      "Sends of the queue's keys go to the new group at once; the old group keeps what it\n"
      "stored and delivers it, and each consumer group is handed the new group's messages\n"
      "only once it has read the old group's, so every key's order holds. Refused while\n"
      "the queue's previous move still waits for a consumer group (the refusal names\n"
      "them), and for a group the cluster does not have.\n"
      "Examples:\n"
      "  txmqctl --broker tcp://10.0.0.1:5555 topic move orders --queue 3 --to g2 --dry-run\n"
      "  txmqctl --operator alice topic move orders --queue 3 --to g2");
  move->add_option("topic", args->topic, "Topic")->required();
  move->add_option("--queue,-q", args->queue, "The queue's number")->required();
  move->add_option("--to", args->to, "The broker group it moves to")->required();
  move->add_flag("--dry-run", args->dry_run, "Say what would change; change nothing");
  move->callback([&ctl, &run, args] { run = [&ctl, args] { return Move(ctl, *args); }; });
}

}  // namespace txmq::ctl
