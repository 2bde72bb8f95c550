// The verbs that delete or rewind: topic delete, group delete, group
// reset, dlq purge. Each takes --dry-run (the broker answers exactly what
// would change, and changes nothing), is audit-logged by the broker under
// --operator, and is refused with a reason when it is not safe (see each
// --help); --force overrides a refusal that only protects live consumers.
#include <iostream>
#include <set>

#include "protocol/src/message_codec.h"
#include "tools/txmqctl/ctl.h"
#include "tools/txmqctl/lifecycle_view.h"
#include "tools/txmqctl/table.h"
#include "txmq/names.h"

namespace txmq::ctl {

namespace {

struct TopicDeleteArgs {
  std::string topic;
  bool force = false;
  bool dry_run = false;
};

struct GroupDeleteArgs {
  std::string group;
  bool force = false;
  bool dry_run = false;
};

struct ResetArgs {
  std::string group, topic, to;
  bool force = false;
  bool dry_run = false;
};

struct PurgeArgs {
  std::string group;
  std::vector<std::string> ids;
  bool all = false;
  bool dry_run = false;
};

int TopicDelete(Ctl& ctl, const TopicDeleteArgs& args) {
  if (Status s = ValidateName("topic", args.topic); !s.ok()) {
    if (IsSystemName(args.topic)) {
      return ctl.Usage("topic '" + args.topic +
                       "' is the broker's own: use txmqctl dlq purge GROUP --all or txmqctl "
                       "group delete GROUP");
    }
    return ctl.Usage(s.message());
  }
  const auto fill = [&](wire::LifecycleRequest::Builder r) { r.setDeleteTopic(args.topic); };
  auto reply = CallLifecycle(ctl, args.dry_run, args.force, fill);
  // Absent here, the topic may still have parts in other broker groups.
  if (!reply.ok() && reply.status().code() != StatusCode::kNotFound) {
    return ctl.Fail(reply.status());
  }
  std::string home;
  std::vector<BrokerGroupView> others = OtherBrokerGroups(
      ctl,
      [&](wire::Envelope::Builder e) {
        auto r = e.initLifecycle();
        r.setOperator(ctl.operator_name());
        r.setDryRun(args.dry_run);
        r.setForce(args.force);
        fill(r);
      },
      &home);
  if (!home.empty()) {
    return DeleteTopicInEveryGroup(ctl, args.topic, args.dry_run, args.force, home,
                                   std::move(reply), std::move(others));
  }
  if (!reply.ok()) return ctl.Fail(reply.status());
  auto ok = reply->envelope().getLifecycleOk();
  PrintTopicDeletion(ctl, ok.getTopicDeleted(), ok.getDryRun());
  return kExitOk;
}

int GroupDelete(Ctl& ctl, const GroupDeleteArgs& args) {
  if (Status s = ValidateName("group", args.group); !s.ok()) return ctl.Usage(s.message());
  auto reply = CallLifecycle(ctl, args.dry_run, args.force, [&](wire::LifecycleRequest::Builder r) {
    r.setDeleteGroup(args.group);
  });
  if (!reply.ok()) return ctl.Fail(reply.status());
  auto ok = reply->envelope().getLifecycleOk();
  PrintGroupDeletion(ctl, ok.getGroupDeleted(), ok.getDryRun());
  return kExitOk;
}

int Reset(Ctl& ctl, const ResetArgs& args) {
  if (Status s = ValidateName("group", args.group); !s.ok()) return ctl.Usage(s.message());
  if (Status s = ValidateNameOrSystem("topic", args.topic); !s.ok()) return ctl.Usage(s.message());
  auto target = ParseResetTarget(args.to, NowMs());
  if (!target.ok()) return ctl.Usage(target.status().message());
  auto reply = CallLifecycle(ctl, args.dry_run, args.force, [&](wire::LifecycleRequest::Builder r) {
    auto g = r.initResetGroup();
    g.setGroup(args.group);
    g.setTopic(args.topic);
    g.setTo(target->to);
    g.setTimeMs(target->time_ms);
    auto offsets = g.initOffsets(static_cast<unsigned>(target->offsets.size()));
    for (unsigned i = 0; i < target->offsets.size(); ++i) {
      offsets[i].setQueue(target->offsets[i].first);
      offsets[i].setOffset(target->offsets[i].second);
    }
  });
  if (!reply.ok()) return ctl.Fail(reply.status());
  auto ok = reply->envelope().getLifecycleOk();
  PrintGroupReset(ctl, ok.getGroupReset(), ok.getDryRun(), args.to);
  return kExitOk;
}

int Purge(Ctl& ctl, const PurgeArgs& args) {
  if (Status s = ValidateName("group", args.group); !s.ok()) return ctl.Usage(s.message());
  if (args.all == !args.ids.empty()) {
    return ctl.Usage("name the dead letters to purge, or --all (not both)");
  }
  for (const auto& id : args.ids) {
    if (Status s = ValidateId("message id", id); !s.ok()) return ctl.Usage(s.message());
  }
  auto reply = CallLifecycle(ctl, args.dry_run, false, [&](wire::LifecycleRequest::Builder r) {
    auto p = r.initPurgeDlq();
    p.setGroup(args.group);
    auto ids = p.initMessageIds(static_cast<unsigned>(args.ids.size()));
    for (unsigned i = 0; i < args.ids.size(); ++i) ids.set(i, args.ids[i]);
    p.setAll(args.all);
  });
  if (!reply.ok()) return ctl.Fail(reply.status());
  auto ok = reply->envelope().getLifecycleOk();
  auto purged = ok.getDlqPurged();
  PrintDlqPurge(ctl, purged, ok.getDryRun());
  if (purged.getMissing().size() == 0) return kExitOk;
  // Some of what was asked for was not there: a failure to report.
  std::string list;
  for (auto id : purged.getMissing()) list += (list.empty() ? "" : ", ") + wire::ToString(id);
  std::cerr << "txmqctl: NOT_FOUND: not in the dead-letter queue of group '" << args.group
            << "': " << list << "\n";
  return kExitNotFound;
}

constexpr const char* kDryRunHelp = "Say exactly what would change; change nothing";

}  // namespace

void AddTopicDeleteCommand(CLI::App& topic, Ctl& ctl, Runner& run) {
  auto args = std::make_shared<TopicDeleteArgs>();
  auto* del = topic.add_subcommand(
      "delete",
      "Delete a topic and everything of it (audit-logged): its messages, every group's\n"
      "cursors on it and redeliveries of it, delayed messages waiting for it. Its index\n"
      "entries go in the background, its log segments with retention. A topic created\n"
      "later under the same name is a new one: it starts empty, at offset 0.\n"
      "Refused while an open transaction has messages for it (end it first: its commit\n"
      "would create the topic again), and, unless --force, while a consumer of a group\n"
      "that reads it is connected or holds one of its messages. A producer that still\n"
      "sends to it creates it again (unless txmqd runs with --no-auto-create-topics).\n"
      "In a cluster every broker group's part goes (--broker-group G: only G's), then,\n"
      "once no group holds one, the topic's placement, so that the name can be created\n"
      "again, with another queue count too. --broker's group is asked first: if it\n"
      "refuses, nothing is deleted. Another group that refuses or cannot be reached\n"
      "keeps its part, and the placement stays: run it again (exit code of the first\n"
      "failure; the output names each group's outcome).\n"
      "Examples:\n"
      "  txmqctl topic delete old-orders --dry-run\n"
      "  txmqctl --operator alice topic delete old-orders");
  del->add_option("name", args->topic, "Topic name")->required();
  del->add_flag("--force", args->force,
                "Delete although consumers of groups reading it are connected (their leases end)");
  del->add_flag("--dry-run", args->dry_run, kDryRunHelp);
  del->callback([&ctl, &run, args] { run = [&ctl, args] { return TopicDelete(ctl, *args); }; });
}

void AddGroupChangeCommands(CLI::App& group, Ctl& ctl, Runner& run) {
  auto del_args = std::make_shared<GroupDeleteArgs>();
  auto* del = group.add_subcommand(
      "delete",
      "Delete a consumer group (audit-logged): its cursors on every topic, its scheduled\n"
      "redeliveries, its dead letters (%DLQ%<group>) and resent copies (%RETRY%<group>).\n"
      "Refused, unless --force, while a consumer of the group is connected, polling or\n"
      "holding a message (it would start the group over), and while the group has dead\n"
      "letters (look at them first, or txmqctl dlq purge GROUP --all).\n"
      "Examples:\n"
      "  txmqctl group delete billing --dry-run\n"
      "  txmqctl --operator alice group delete billing");
  del->add_option("group", del_args->group, "Consumer group")->required();
  del->add_flag("--force", del_args->force,
                "Delete although consumers are live or dead letters remain");
  del->add_flag("--dry-run", del_args->dry_run, kDryRunHelp);
  del->callback(
      [&ctl, &run, del_args] { run = [&ctl, del_args] { return GroupDelete(ctl, *del_args); }; });

  auto reset_args = std::make_shared<ResetArgs>();
  auto* reset = group.add_subcommand(
      "reset",
      "Move a consumer group's position on one topic (audit-logged); the group's\n"
      "scheduled redeliveries of the queues moved are dropped. Refused, unless --force,\n"
      "while a consumer of the group is connected or holds a message of the topic (its\n"
      "leases would end).\n"
      "--to takes:\n"
      "  earliest               the first message still stored: everything again\n"
      "  latest                 the end: only messages stored from now on\n"
      "  2026-01-31T12:00:00Z   the first message stored at or after that time (UTC)\n"
      "  now-30m                ... or that long ago\n"
      "  0:15,2:40              these offsets of these queues; other queues stay\n"
      "Examples:\n"
      "  txmqctl group reset billing --topic orders --to earliest --dry-run\n"
      "  txmqctl group reset billing --topic orders --to now-1h\n"
      "  txmqctl group reset billing --topic orders --to 0:15,1:20");
  reset->add_option("group", reset_args->group, "Consumer group")->required();
  reset->add_option("--topic,-t", reset_args->topic, "Topic whose cursors move")->required();
  reset->add_option("--to", reset_args->to, "earliest, latest, a time, now-DURATION, Q:OFFSET,...")
      ->required();
  reset->add_flag("--force", reset_args->force, "Reset although consumers of the group are live");
  reset->add_flag("--dry-run", reset_args->dry_run, kDryRunHelp);
  reset->callback(
      [&ctl, &run, reset_args] { run = [&ctl, reset_args] { return Reset(ctl, *reset_args); }; });
}

void AddDlqPurgeCommand(CLI::App& dlq, Ctl& ctl, Runner& run) {
  auto args = std::make_shared<PurgeArgs>();
  auto* purge = dlq.add_subcommand(
      "purge",
      "Delete dead letters for good (audit-logged). With --all the dead-letter topic goes\n"
      "with its storage; the next dead letter starts it again.\n"
      "Examples:\n"
      "  txmqctl dlq purge billing --all --dry-run\n"
      "  txmqctl dlq purge billing 0190a1b2-7c3d-7e4f-8a9b-0c1d2e3f4a5b");
  purge->add_option("group", args->group, "Consumer group")->required();
  purge->add_option("ids", args->ids, "Message ids");
  purge->add_flag("--all", args->all, "Every dead letter of the group");
  purge->add_flag("--dry-run", args->dry_run, kDryRunHelp);
  purge->callback([&ctl, &run, args] { run = [&ctl, args] { return Purge(ctl, *args); }; });
}

}  // namespace txmq::ctl
