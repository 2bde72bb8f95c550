// txmqctl topic move and topic rebalance: a queue of a topic to another
// broker group of the cluster (or released from the group it left), or
// every queue that today's groups would place elsewhere (DESIGN.md "Moving
// a queue between groups").
#include <iostream>

#include <nlohmann/json.hpp>

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
  bool release = false;
  bool force = false;
  bool dry_run = false;
};

int Move(Ctl& ctl, const MoveArgs& args) {
  if (Status s = ValidateName("topic", args.topic); !s.ok()) return ctl.Usage(s.message());
  if (args.release && !args.to.empty()) {
    return ctl.Usage(
        "--release stops waiting for the group the queue left; it moves nothing, so "
        "not with --to " +
        args.to);
  }
  if (!args.release && args.to.empty()) {
    return ctl.Usage("--to names the broker group the queue moves to (or --release)");
  }
  if (args.force && !args.release) return ctl.Usage("--force goes with --release only");
  auto reply = CallLifecycle(ctl, args.dry_run, args.force, [&](wire::LifecycleRequest::Builder r) {
    auto m = r.initMoveQueue();
    m.setTopic(args.topic);
    m.setQueue(args.queue);
    m.setToGroup(args.to);
    m.setRelease(args.release);
  });
  if (!reply.ok()) return ctl.Fail(reply.status());
  auto ok = reply->envelope().getLifecycleOk();
  auto moved = ok.getQueueMoved();
  const std::string from = wire::ToString(moved.getFromGroup());
  const std::string to = wire::ToString(moved.getToGroup());
  if (ctl.json()) {
    nlohmann::json j = {{"dry_run", ok.getDryRun()},
                        {"topic", wire::ToString(moved.getTopic())},
                        {"queue", moved.getQueue()},
                        {"from", from},
                        {"to", to},
                        {"generation", moved.getGeneration()}};
    if (args.release) j["released"] = true;
    PrintJson(j);
    return kExitOk;
  }
  if (args.release) {
    std::cout << (ok.getDryRun() ? "dry run: would release" : "released") << " queue "
              << moved.getQueue() << " of topic '" << wire::ToString(moved.getTopic())
              << "' from group " << from << ": consumer groups read group " << to
              << "'s messages of it without waiting for " << from << "; what " << from
              << " still holds of it is not delivered\n";
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

struct RebalanceArgs {
  std::string topic;
  bool dry_run = false;
};

int Rebalance(Ctl& ctl, const RebalanceArgs& args) {
  if (Status s = ValidateName("topic", args.topic); !s.ok()) return ctl.Usage(s.message());
  auto reply = CallLifecycle(ctl, args.dry_run, false, [&](wire::LifecycleRequest::Builder r) {
    auto m = r.initMoveQueue();
    m.setTopic(args.topic);
    m.setRebalance(true);
  });
  if (!reply.ok()) return ctl.Fail(reply.status());
  auto ok = reply->envelope().getLifecycleOk();
  auto moved = ok.getQueuesMoved();
  if (ctl.json()) {
    nlohmann::json j = {
        {"dry_run", ok.getDryRun()}, {"topic", args.topic}, {"moved", nlohmann::json::array()}};
    for (auto m : moved) {
      j["moved"].push_back({{"queue", m.getQueue()},
                            {"from", wire::ToString(m.getFromGroup())},
                            {"to", wire::ToString(m.getToGroup())},
                            {"generation", m.getGeneration()}});
    }
    PrintJson(j);
    return kExitOk;
  }
  if (moved.size() == 0) {
    std::cout << "topic '" << args.topic
              << "' is placed as the cluster's groups would place it now: nothing to move\n";
    return kExitOk;
  }
  std::cout << (ok.getDryRun() ? "dry run: would move " : "moved ") << Count(moved.size(), "queue")
            << " of topic '" << args.topic << "':\n";
  for (auto m : moved) {
    std::cout << "  queue " << m.getQueue() << ": " << wire::ToString(m.getFromGroup()) << " -> "
              << wire::ToString(m.getToGroup()) << " (generation " << m.getGeneration() << ")\n";
  }
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
      "With --release instead of --to: stop waiting for the group the queue last moved\n"
      "from, when that group is gone for good and its drain report will never come\n"
      "(topic show's MOVE column says who waits). Consumer groups then read the new\n"
      "group's messages of the queue at once; what the old group still holds of it is\n"
      "not delivered. Refused while the old group has a live node (it reports by\n"
      "itself), unless --force.\n"
      "Examples:\n"
      "  txmqctl --broker tcp://10.0.0.1:5555 topic move orders --queue 3 --to g2 --dry-run\n"
      "  txmqctl --operator alice topic move orders --queue 3 --to g2\n"
      "  txmqctl --operator alice topic move orders --queue 3 --release");
  move->add_option("topic", args->topic, "Topic")->required();
  move->add_option("--queue,-q", args->queue, "The queue's number")->required();
  move->add_option("--to", args->to, "The broker group it moves to");
  move->add_flag("--release", args->release,
                 "Stop waiting for the group the queue last moved from (gone for good: refused "
                 "while it has a live node)");
  move->add_flag("--force", args->force,
                 "With --release: also while that group has live nodes (gives up what it holds "
                 "of the queue)");
  move->add_flag("--dry-run", args->dry_run, "Say what would change; change nothing");
  move->callback([&ctl, &run, args] { run = [&ctl, args] { return Move(ctl, *args); }; });

  auto rebalance_args = std::make_shared<RebalanceArgs>();
  auto* rebalance = topic.add_subcommand(
      "rebalance",
      "Move the queues of a topic that the cluster's groups of today would place elsewhere\n"
      "(audit-logged): after a group joined, about its share of the topic's queues go to\n"
      "it, each as txmqctl topic move moves one (every key keeps its order). A stored\n"
      "placement never changes by itself. Refused while a queue that would move is still\n"
      "draining from its last move.\n"
      "Examples:\n"
      "  txmqctl topic rebalance orders --dry-run\n"
      "  txmqctl --operator alice topic rebalance orders");
  rebalance->add_option("topic", rebalance_args->topic, "Topic")->required();
  rebalance->add_flag("--dry-run", rebalance_args->dry_run, "Say what would move; move nothing");
  rebalance->callback([&ctl, &run, rebalance_args] {
    run = [&ctl, rebalance_args] { return Rebalance(ctl, *rebalance_args); };
  });
}

}  // namespace txmq::ctl
