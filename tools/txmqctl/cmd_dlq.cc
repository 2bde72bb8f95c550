// txmqctl dlq list | show | resend: a consumer group's dead letters
// (messages its handlers failed too often), and giving them another try
// (purge: cmd_lifecycle.cc).
#include <iostream>

#include "protocol/src/message_codec.h"
#include "tools/txmqctl/ctl.h"
#include "tools/txmqctl/message_view.h"
#include "tools/txmqctl/table.h"
#include "txmq/names.h"

namespace txmq::ctl {

namespace {

struct ListArgs {
  std::string group;
  uint32_t limit = 100;
};

struct ShowArgs {
  std::string group, id;
};

struct ResendArgs {
  std::string group, reason;
  std::vector<std::string> ids;
  bool all = false;
  bool dry_run = false;
};

nlohmann::json LetterJson(wire::DeadLetter::Reader d) {
  return {{"id", wire::ToString(d.getId())},
          {"offset", d.getOffset()},
          {"origin_topic", wire::ToString(d.getOriginTopic())},
          {"origin_queue", d.getOriginQueue()},
          {"origin_offset", d.getOriginOffset()},
          {"deliveries", d.getDeliveries()},
          {"stored_ms", d.getStoredMs()},
          {"key", wire::ToString(d.getKey())},
          {"body_bytes", d.getBodyBytes()}};
}

std::string Origin(wire::DeadLetter::Reader d) {
  return wire::ToString(d.getOriginTopic()) + " queue " + std::to_string(d.getOriginQueue()) +
         " offset " + std::to_string(d.getOriginOffset());
}

int List(Ctl& ctl, const ListArgs& args) {
  if (Status s = ValidateName("group", args.group); !s.ok()) return ctl.Usage(s.message());
  auto reply = ctl.Call([&](wire::Envelope::Builder e) {
    auto l = e.initDlqList();
    l.setGroup(args.group);
    l.setLimit(args.limit);
  });
  if (!reply.ok()) return ctl.Fail(reply.status());
  auto ok = reply->envelope().getDlqListOk();
  if (ctl.json()) {
    nlohmann::json j = {{"group", args.group},
                        {"total", ok.getTotal()},
                        {"more", ok.getMore()},
                        {"messages", nlohmann::json::array()}};
    for (auto d : ok.getMessages()) j["messages"].push_back(LetterJson(d));
    PrintJson(j);
    return kExitOk;
  }
  Table table({"ID", "ORIGIN", "DELIVERIES", "DEAD SINCE", "KEY", "BYTES"});
  for (auto d : ok.getMessages()) {
    table.AddRow({wire::ToString(d.getId()), Origin(d), std::to_string(d.getDeliveries()),
                  FormatTimeMs(d.getStoredMs()),
                  d.getKey().size() == 0 ? "-" : OneLine(wire::ToString(d.getKey()), 40),
                  std::to_string(d.getBodyBytes())});
  }
  table.Print(std::cout, "no dead letters in group '" + args.group + "'");
  if (ok.getMore()) {
    std::cout << "(" << ok.getMessages().size() << " of " << ok.getTotal()
              << " shown; raise --limit)\n";
  }
  return kExitOk;
}

int Show(Ctl& ctl, const ShowArgs& args) {
  if (Status s = ValidateName("group", args.group); !s.ok()) return ctl.Usage(s.message());
  if (Status s = ValidateId("message id", args.id); !s.ok()) return ctl.Usage(s.message());
  auto reply = ctl.Call([&](wire::Envelope::Builder e) {
    auto d = e.initDlqShow();
    d.setGroup(args.group);
    d.setMessageId(args.id);
  });
  if (!reply.ok()) return ctl.Fail(reply.status());
  auto ok = reply->envelope().getDlqShowOk();
  if (ctl.json()) {
    PrintJson({{"group", args.group},
               {"letter", LetterJson(ok.getLetter())},
               {"message", MessageJson(ok.getMessage())}});
    return kExitOk;
  }
  Fields f;
  AddMessageFields(f, ok.getMessage());
  f.Add("failed from", Origin(ok.getLetter()));
  f.Add("deliveries", std::to_string(ok.getLetter().getDeliveries()));
  f.Add("dead since", FormatTimeMs(ok.getLetter().getStoredMs()) + " (" +
                          AgeMs(ok.getLetter().getStoredMs()) + " ago)");
  f.Add("dead letter",
        "%DLQ%" + args.group + " offset " + std::to_string(ok.getLetter().getOffset()));
  f.Print(std::cout);
  PrintBody(std::cout, ok.getMessage(), 1000);
  return kExitOk;
}

int Resend(Ctl& ctl, const ResendArgs& args) {
  if (Status s = ValidateName("group", args.group); !s.ok()) return ctl.Usage(s.message());
  if (args.all == !args.ids.empty()) {
    return ctl.Usage("name the dead letters to resend, or --all (not both)");
  }
  for (const auto& id : args.ids) {
    if (Status s = ValidateId("message id", id); !s.ok()) return ctl.Usage(s.message());
  }
  auto reply = ctl.Call([&](wire::Envelope::Builder e) {
    auto r = e.initDlqResend();
    r.setGroup(args.group);
    auto ids = r.initMessageIds(static_cast<unsigned>(args.ids.size()));
    for (unsigned i = 0; i < args.ids.size(); ++i) ids.set(i, args.ids[i]);
    r.setAll(args.all);
    r.setDryRun(args.dry_run);
    r.setOperator(ctl.operator_name());
    r.setReason(args.reason);
  });
  if (!reply.ok()) return ctl.Fail(reply.status());
  auto ok = reply->envelope().getDlqResendOk();
  std::vector<std::string> resent, missing;
  for (auto id : ok.getResent()) resent.push_back(wire::ToString(id));
  for (auto id : ok.getMissing()) missing.push_back(wire::ToString(id));
  if (ctl.json()) {
    PrintJson({{"group", args.group},
               {"dry_run", args.dry_run},
               {"resent", resent},
               {"missing", missing},
               {"operator", ctl.operator_name()}});
  } else {
    for (const auto& id : resent) std::cout << id << "\n";
    std::cout << (args.dry_run ? "dry run: would resend " : "resent ")
              << Count(resent.size(), "message") << " to group '" << args.group << "'"
              << (args.dry_run ? "; nothing changed" : "") << "\n";
  }
  if (missing.empty()) return kExitOk;
  // Some of what was asked for did not happen: that is a failure to report.
  std::string list;
  for (const auto& id : missing) list += (list.empty() ? "" : ", ") + id;
  std::cerr << "txmqctl: NOT_FOUND: not in the dead-letter queue of group '" << args.group
            << "': " << list << "\n";
  return kExitNotFound;
}

}  // namespace

void AddDlqCommand(CLI::App& app, Ctl& ctl, Runner& run) {
  auto* noun =
      app.add_subcommand("dlq",
                         "Dead letters of a consumer group (%DLQ%<group>): list, show, resend,\n"
                         "purge\n"
                         "Examples:\n"
                         "  txmqctl dlq list billing\n"
                         "  txmqctl dlq resend billing --all --dry-run");
  noun->require_subcommand(1);

  auto list_args = std::make_shared<ListArgs>();
  auto* list = noun->add_subcommand("list",
                                    "A group's dead letters, oldest first, with where they failed\n"
                                    "Example: txmqctl dlq list billing --limit 20");
  list->add_option("group", list_args->group, "Consumer group")->required();
  list->add_option("--limit,-n", list_args->limit, "Most dead letters shown")
      ->check(CLI::Range(1, 10000))
      ->capture_default_str();
  list->callback(
      [&ctl, &run, list_args] { run = [&ctl, list_args] { return List(ctl, *list_args); }; });

  auto show_args = std::make_shared<ShowArgs>();
  auto* show = noun->add_subcommand(
      "show",
      "One dead letter: headers, properties, body, where and how often it failed\n"
      "Example: txmqctl dlq show billing 0190a1b2-7c3d-7e4f-8a9b-0c1d2e3f4a5b");
  show->add_option("group", show_args->group, "Consumer group")->required();
  show->add_option("id", show_args->id, "Message id")->required();
  show->callback(
      [&ctl, &run, show_args] { run = [&ctl, show_args] { return Show(ctl, *show_args); }; });

  auto resend_args = std::make_shared<ResendArgs>();
  auto* resend = noun->add_subcommand(
      "resend",
      "Deliver dead letters to the group again (audit-logged); they leave the\n"
      "dead-letter queue. Fix the handler first.\n"
      "Examples:\n"
      "  txmqctl dlq resend billing 0190a1b2-7c3d-7e4f-8a9b-0c1d2e3f4a5b\n"
      "  txmqctl dlq resend billing --all --dry-run");
  resend->add_option("group", resend_args->group, "Consumer group")->required();
  resend->add_option("ids", resend_args->ids, "Message ids");
  resend->add_flag("--all", resend_args->all, "Every dead letter of the group");
  resend->add_flag("--dry-run", resend_args->dry_run, "List what would be resent");
  resend->add_option("--reason", resend_args->reason, "Why, for the broker's audit log");
  resend->callback([&ctl, &run, resend_args] {
    run = [&ctl, resend_args] { return Resend(ctl, *resend_args); };
  });

  AddDlqPurgeCommand(*noun, ctl, run);
}

}  // namespace txmq::ctl
