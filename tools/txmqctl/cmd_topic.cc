// txmqctl topic list | create | show (delete: cmd_lifecycle.cc).
#include <iostream>

#include "protocol/src/message_codec.h"
#include "tools/txmqctl/ctl.h"
#include "tools/txmqctl/table.h"
#include "txmq/names.h"

namespace txmq::ctl {

namespace {

struct CreateArgs {
  std::string name;
  uint32_t queues = 0;  // 0: the broker's default
  bool dry_run = false;
};

nlohmann::json QueueJson(wire::QueueInfo::Reader q) {
  return {{"queue", q.getQueue()},
          {"min_offset", q.getMinOffset()},
          {"end_offset", q.getEndOffset()},
          {"messages", q.getEndOffset() - q.getMinOffset()}};
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
    j["groups"].push_back({{"group", wire::ToString(g.getGroup())},
                           {"lag", g.getLag()},
                           {"in_flight", g.getInFlight()},
                           {"retrying", g.getRetrying()}});
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
  Table queues({"QUEUE", "MIN OFFSET", "MAX OFFSET", "MESSAGES"});
  for (auto q : t.getQueues()) {
    const bool empty = q.getEndOffset() <= q.getMinOffset();
    queues.AddRow({std::to_string(q.getQueue()), empty ? "-" : std::to_string(q.getMinOffset()),
                   empty ? "-" : std::to_string(q.getEndOffset() - 1),
                   std::to_string(q.getEndOffset() - q.getMinOffset())});
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

}  // namespace

void AddTopicCommand(CLI::App& app, Ctl& ctl, Runner& run) {
  auto* noun = app.add_subcommand("topic",
                                  "Topics: list them, create one, show one's queues and readers,\n"
                                  "delete one\n"
                                  "Examples:\n"
                                  "  txmqctl topic list\n"
                                  "  txmqctl topic create orders --queues 8\n"
                                  "  txmqctl topic show orders --json\n"
                                  "  txmqctl topic delete old-orders --dry-run");
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
      "A topic's queues (min/max offsets) and the consumer groups reading it, with their lag\n"
      "Example: txmqctl topic show orders");
  show->add_option("name", *name, "Topic name (or %DLQ%<group>)")->required();
  show->callback([&ctl, &run, name] { run = [&ctl, name] { return Show(ctl, *name); }; });

  AddTopicDeleteCommand(*noun, ctl, run);
}

}  // namespace txmq::ctl
