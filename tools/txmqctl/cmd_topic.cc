// txmqctl topic list | create | show | peek (delete: cmd_lifecycle.cc; move: cmd_topic_move.cc).
#include <iostream>
#include <optional>

#include "protocol/src/message_codec.h"
#include "protocol/src/util.h"
#include "tools/txmqctl/ctl.h"
#include "tools/txmqctl/lifecycle_view.h"
#include "tools/txmqctl/message_view.h"
#include "tools/txmqctl/table.h"
#include "txmq/names.h"

namespace txmq::ctl {

namespace {

struct CreateArgs {
  std::string name;
  uint32_t queues = 0;  // 0: the broker's default
  bool dry_run = false;
};

struct PeekArgs {
  std::string topic;
  std::optional<uint32_t> queue;
  std::optional<uint64_t> from;
  std::string from_time;
  uint32_t max = 20;
};

// A single broker (or one older than the fields) names no group.
std::string GroupOf(wire::QueueInfo::Reader q) {
  return q.getGroup().size() == 0 ? "-" : wire::ToString(q.getGroup());
}
std::string LeaderOf(wire::QueueInfo::Reader q) {
  return q.getLeader().size() == 0 ? "-" : wire::ToString(q.getLeader());
}

// "-", or where a moved queue's older messages are still read and who
// has not finished them.
std::string MoveOf(wire::QueueInfo::Reader q) {
  if (q.getDrainingFrom().size() == 0) return "-";
  std::string out = q.getMovedTo().size() != 0
                        ? "moved to " + wire::ToString(q.getMovedTo()) + ", draining here: "
                        : "draining from " + wire::ToString(q.getDrainingFrom()) + ": ";
  if (!q.getDrainReported()) return out + "no report yet";
  if (q.getDrainPending().size() == 0) return out + "done";
  std::string groups;
  for (auto g : q.getDrainPending()) groups += (groups.empty() ? "" : ", ") + wire::ToString(g);
  return out + "waits for " + groups;
}

nlohmann::json QueueJson(wire::QueueInfo::Reader q) {
  nlohmann::json draining = nullptr;
  if (q.getDrainingFrom().size() != 0) {
    draining = {{"from", wire::ToString(q.getDrainingFrom())},
                {"reported", q.getDrainReported()},
                {"pending", nlohmann::json::array()}};
    for (auto g : q.getDrainPending()) draining["pending"].push_back(wire::ToString(g));
  }
  return {{"queue", q.getQueue()},
          {"draining", draining},
          {"moved_to", q.getMovedTo().size() == 0 ? nlohmann::json(nullptr)
                                                  : nlohmann::json(wire::ToString(q.getMovedTo()))},
          {"min_offset", q.getMinOffset()},
          {"end_offset", q.getEndOffset()},
          {"messages", q.getEndOffset() - q.getMinOffset()},
          {"group", q.getGroup().size() == 0 ? nlohmann::json(nullptr)
                                             : nlohmann::json(wire::ToString(q.getGroup()))},
          {"leader", q.getLeader().size() == 0 ? nlohmann::json(nullptr)
                                               : nlohmann::json(wire::ToString(q.getLeader()))}};
}

nlohmann::json TopicJson(wire::TopicInfo::Reader t, bool with_groups) {
  nlohmann::json j = {{"name", wire::ToString(t.getName())},
                      {"created_ms", t.getCreatedMs()},
                      {"messages", t.getMessages()},
                      {"queues", nlohmann::json::array()}};
  for (auto q : t.getQueues()) j["queues"].push_back(QueueJson(q));
  if (!with_groups) return j;
  j["groups"] = nlohmann::json::array();
  for (auto g : t.getGroups()) {
    j["groups"].push_back(GroupLagJson(g));
  }
  return j;
}

int List(Ctl& ctl) {
  auto reply = ctl.Call([](wire::Envelope::Builder e) { e.setTopicList(); });
  if (!reply.ok()) return ctl.Fail(reply.status());
  auto topics = reply->envelope().getTopicListOk().getTopics();
  if (ctl.json()) {
    nlohmann::json j = {{"topics", nlohmann::json::array()}};
    for (auto t : topics) j["topics"].push_back(TopicJson(t, false));
    PrintJson(j);
    return kExitOk;
  }
  Table table({"NAME", "QUEUES", "MESSAGES", "CREATED"});
  for (auto t : topics) {
    table.AddRow({wire::ToString(t.getName()), std::to_string(t.getQueues().size()),
                  std::to_string(t.getMessages()), FormatTimeMs(t.getCreatedMs())});
  }
  table.Print(std::cout, "no topics");
  return kExitOk;
}

int Show(Ctl& ctl, const std::string& name) {
  if (Status s = ValidateNameOrSystem("topic", name); !s.ok()) return ctl.Usage(s.message());
  auto reply = ctl.Call([&](wire::Envelope::Builder e) { e.setTopicShow(name); });
  if (!reply.ok()) return ctl.Fail(reply.status());
  auto t = reply->envelope().getTopicShowOk();
  if (ctl.json()) {
    PrintJson(TopicJson(t, true));
    return kExitOk;
  }
  Fields f;
  f.Add("topic", wire::ToString(t.getName()));
  f.Add("created", FormatTimeMs(t.getCreatedMs()) + " (" + AgeMs(t.getCreatedMs()) + " ago)");
  f.Add("messages", std::to_string(t.getMessages()));
  f.Print(std::cout);
  std::cout << "\n";
  // MAX OFFSET is the last stored one; the broker reports one past it.
  // GROUP and LEADER: the replicated group holding the queue and the node
  // serving it ("-" and the broker's name on a single broker). MOVE: a
  // queue moved here whose older messages are still read where it was,
  // or (asked of that group) one moved away whose older messages are
  // read here.
  Table queues({"QUEUE", "MIN OFFSET", "MAX OFFSET", "MESSAGES", "GROUP", "LEADER", "MOVE"});
  for (auto q : t.getQueues()) {
    const bool empty = q.getEndOffset() <= q.getMinOffset();
    queues.AddRow({std::to_string(q.getQueue()), empty ? "-" : std::to_string(q.getMinOffset()),
                   empty ? "-" : std::to_string(q.getEndOffset() - 1),
                   std::to_string(q.getEndOffset() - q.getMinOffset()), GroupOf(q), LeaderOf(q),
                   MoveOf(q)});
  }
  queues.Print(std::cout, "no queues");
  std::cout << "\n";
  Table groups({"GROUP", "LAG", "IN FLIGHT", "RETRYING"});
  for (auto g : t.getGroups()) {
    groups.AddRow({wire::ToString(g.getGroup()), std::to_string(g.getLag()),
                   std::to_string(g.getInFlight()), std::to_string(g.getRetrying())});
  }
  groups.Print(std::cout, "no consumer group reads this topic");
  return kExitOk;
}

// What create would do, without creating: the broker has no dry-run create,
// so look the topic up instead.
int CreateDryRun(Ctl& ctl, const CreateArgs& args) {
  auto reply = ctl.Call([&](wire::Envelope::Builder e) { e.setTopicShow(args.name); });
  if (!reply.ok() && reply.status().code() != StatusCode::kNotFound) {
    return ctl.Fail(reply.status());
  }
  const bool exists = reply.ok();
  const uint32_t existing = exists ? reply->envelope().getTopicShowOk().getQueues().size() : 0;
  if (ctl.json()) {
    nlohmann::json j = {{"dry_run", true}, {"topic", args.name}, {"would_create", !exists}};
    if (exists) j["queues"] = existing;
    if (!exists && args.queues != 0) j["queues"] = args.queues;
    PrintJson(j);
    return kExitOk;
  }
  if (exists) {
    std::cout << "dry run: topic '" << args.name << "' exists already with " << existing
              << " queues; create would change nothing\n";
  } else {
    std::cout << "dry run: would create topic '" << args.name << "' with "
              << (args.queues == 0 ? std::string("the broker's default number of")
                                   : std::to_string(args.queues))
              << " queues (as operator '" << ctl.operator_name() << "'); nothing changed\n";
  }
  return kExitOk;
}

int Create(Ctl& ctl, const CreateArgs& args) {
  if (Status s = ValidateName("topic", args.name); !s.ok()) return ctl.Usage(s.message());
  if (args.dry_run) return CreateDryRun(ctl, args);
  auto reply = ctl.Call([&](wire::Envelope::Builder e) {
    auto c = e.initCreateTopic();
    c.setTopic(args.name);
    c.setQueues(args.queues);
    c.setOperator(ctl.operator_name());
  });
  if (!reply.ok()) return ctl.Fail(reply.status());
  auto ok = reply->envelope().getCreateTopicOk();
  if (ctl.json()) {
    PrintJson({{"topic", wire::ToString(ok.getTopic())},
               {"queues", ok.getQueues()},
               {"created", ok.getCreated()}});
    return kExitOk;
  }
  if (ok.getCreated()) {
    std::cout << "created topic '" << args.name << "' with " << ok.getQueues() << " queues\n";
    return kExitOk;
  }
  std::cout << "topic '" << args.name << "' exists already with " << ok.getQueues()
            << " queues; nothing changed";
  if (args.queues != 0 && args.queues != ok.getQueues()) {
    std::cout << " (a topic keeps the number of queues it was created with)";
  }
  std::cout << "\n";
  return kExitOk;
}

int Peek(Ctl& ctl, const PeekArgs& args) {
  if (Status s = ValidateNameOrSystem("topic", args.topic); !s.ok()) return ctl.Usage(s.message());
  if (args.from && !args.from_time.empty())
    return ctl.Usage("give --from or --from-time, not both");
  std::optional<int64_t> from_ms;
  if (!args.from_time.empty()) {
    from_ms = ParseTimeArg(args.from_time, NowMs());
    if (!from_ms || *from_ms <= 0) {
      return ctl.Usage("--from-time '" + args.from_time +
                       "' is not a time: 2026-01-31T12:00:00Z (UTC) or now-30m");
    }
  }
  auto reply = ctl.Call([&](wire::Envelope::Builder e) {
    auto p = e.initPeek();
    p.setTopic(args.topic);
    p.setOneQueue(args.queue.has_value());
    p.setQueue(args.queue.value_or(0));
    p.setFromOffset(args.from.value_or(0));
    p.setFromTimeMs(from_ms.value_or(0));
    p.setMaxMessages(args.max);
  });
  if (!reply.ok()) return ctl.Fail(reply.status());
  auto ok = reply->envelope().getPeekOk();
  if (ctl.json()) {
    nlohmann::json j = {{"topic", args.topic},
                        {"messages", nlohmann::json::array()},
                        {"next", nlohmann::json::array()},
                        {"more", ok.getMore()}};
    for (auto d : ok.getMessages()) {
      nlohmann::json m = MessageJson(d.getMessage());
      m["queue"] = d.getLocation().getQueue();
      m["offset"] = d.getLocation().getOffset();
      m["stored_ms"] = d.getLocation().getStoredMs();
      j["messages"].push_back(m);
    }
    for (auto n : ok.getNext()) {
      j["next"].push_back({{"queue", n.getQueue()}, {"offset", n.getOffset()}});
    }
    PrintJson(j);
    return kExitOk;
  }
  Table table({"QUEUE", "OFFSET", "STORED", "ID", "KEY", "BYTES", "BODY"});
  for (auto d : ok.getMessages()) {
    auto m = d.getMessage();
    table.AddRow({std::to_string(d.getLocation().getQueue()),
                  std::to_string(d.getLocation().getOffset()),
                  FormatTimeMs(d.getLocation().getStoredMs()), wire::ToString(m.getId()),
                  m.getKey().size() == 0 ? "-" : wire::ToString(m.getKey()),
                  std::to_string(m.getBody().size()), Preview(wire::ToString(m.getBody()), 60)});
  }
  table.Print(std::cout, "no messages in topic '" + args.topic + "' from there");
  if (ok.getMore()) {
    std::string next;
    for (auto n : ok.getNext()) {
      if (args.queue || ok.getNext().size() == 1) next = std::to_string(n.getOffset());
    }
    std::cerr << "txmqctl: more messages follow"
              << (next.empty() ? " (raise --max, or peek one --queue from its next offset)"
                               : "; go on with --from " + next)
              << "\n";
  }
  return kExitOk;
}

}  // namespace

void AddTopicCommand(CLI::App& app, Ctl& ctl, Runner& run) {
  auto* noun = app.add_subcommand("topic",
                                  "Topics: list them, create one, show one's queues and readers,\n"
                                  "delete one\n"
                                  "Examples:\n"
                                  "  txmqctl topic list\n"
                                  "  txmqctl topic create orders --queues 8\n"
                                  "  txmqctl topic show orders --json\n"
                                  "  txmqctl topic peek orders --queue 0 --from 100 --max 5\n"
                                  "  txmqctl topic delete old-orders --dry-run\n"
                                  "  txmqctl topic move orders --queue 3 --to g2\n"
                                  "  txmqctl topic rebalance orders --dry-run");
  noun->require_subcommand(1);

  auto* list = noun->add_subcommand(
      "list", "Every topic with its queues and messages\nExample: txmqctl topic list --json");
  list->callback([&ctl, &run] { run = [&ctl] { return List(ctl); }; });

  auto args = std::make_shared<CreateArgs>();
  auto* create =
      noun->add_subcommand("create",
                           "Create a topic (audit-logged); an existing topic is left as it is\n"
                           "Example: txmqctl topic create orders --queues 8 --dry-run");
  create->add_option("name", args->name, "Topic name")->required();
  create->add_option("--queues", args->queues, "Queues (default: the broker's --queues)")
      ->check(CLI::Range(1, 1024));
  create->add_flag("--dry-run", args->dry_run, "Say what would happen; change nothing");
  create->callback([&ctl, &run, args] { run = [&ctl, args] { return Create(ctl, *args); }; });

  auto name = std::make_shared<std::string>();
  auto* show = noun->add_subcommand(
      "show",
      "A topic's queues (min/max offsets; in a replicated group also the group holding\n"
      "each queue and the node leading it: '-' and the broker's name on a single broker)\n"
      "and the consumer groups reading it, with their lag\n"
      "Example: txmqctl topic show orders");
  show->add_option("name", *name, "Topic name (or %DLQ%<group>)")->required();
  show->callback([&ctl, &run, name] { run = [&ctl, name] { return Show(ctl, *name); }; });

  auto peek_args = std::make_shared<PeekArgs>();
  auto* peek = noun->add_subcommand(
      "peek",
      "Read a topic's stored messages without a consumer group: no lease, no cursor,\n"
      "nothing changes (unlike consume). Oldest first; without --queue every queue,\n"
      "merged by the time each message was stored. Starts at each queue's first stored\n"
      "message unless --from or --from-time says otherwise.\n"
      "Examples:\n"
      "  txmqctl topic peek orders --max 5\n"
      "  txmqctl topic peek orders --queue 2 --from 1500\n"
      "  txmqctl topic peek orders --from-time now-10m --json\n"
      "  txmqctl topic peek orders --from-time 2026-01-31T12:00:00Z");
  peek->add_option("topic", peek_args->topic, "Topic name (or %DLQ%<group>)")->required();
  peek->add_option("--queue,-q", peek_args->queue, "Only this queue");
  auto* from = peek->add_option("--from", peek_args->from, "First offset (of each queue)");
  peek->add_option("--from-time", peek_args->from_time,
                   "First message stored at or after: 2026-01-31T12:00:00Z (UTC) or now-30m")
      ->excludes(from);
  peek->add_option("--max,-n", peek_args->max, "Most messages shown (1-1024)")
      ->check(CLI::Range(1, 1024))
      ->capture_default_str();
  peek->callback(
      [&ctl, &run, peek_args] { run = [&ctl, peek_args] { return Peek(ctl, *peek_args); }; });

  AddTopicDeleteCommand(*noun, ctl, run);
  AddTopicMoveCommand(*noun, ctl, run);
}

}  // namespace txmq::ctl
