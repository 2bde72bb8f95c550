// txmqctl msg show | find: one stored message, wherever it is.
#include <iostream>

#include "protocol/src/message_codec.h"
#include "tools/txmqctl/ctl.h"
#include "tools/txmqctl/message_view.h"
#include "tools/txmqctl/table.h"
#include "txmq/names.h"

namespace txmq::ctl {

namespace {

struct FindArgs {
  std::string topic, key;
  uint32_t limit = 20;
};

nlohmann::json LocationJson(wire::Location::Reader l) {
  return {{"topic", wire::ToString(l.getTopic())},
          {"queue", l.getQueue()},
          {"offset", l.getOffset()},
          {"stored_ms", l.getStoredMs()}};
}

std::string Where(wire::Location::Reader l) {
  return wire::ToString(l.getTopic()) + " queue " + std::to_string(l.getQueue()) + " offset " +
         std::to_string(l.getOffset());
}

int Show(Ctl& ctl, const std::string& id) {
  auto reply = ctl.Call([&](wire::Envelope::Builder e) { e.initShowMessage().setMessageId(id); });
  if (!reply.ok()) return ctl.Fail(reply.status());
  auto d = reply->envelope().getShowMessageOk();
  if (ctl.json()) {
    nlohmann::json j = {{"message", MessageJson(d.getMessage())},
                        {"location", LocationJson(d.getLocation())},
                        {"deliveries", nlohmann::json::array()}};
    for (auto s : d.getDeliveries()) {
      j["deliveries"].push_back({{"group", wire::ToString(s.getGroup())},
                                 {"state", wire::ToString(s.getState())},
                                 {"delivery_count", s.getDeliveryCount()},
                                 {"detail", wire::ToString(s.getDetail())}});
    }
    PrintJson(j);
    return kExitOk;
  }
  Fields f;
  AddMessageFields(f, d.getMessage());
  f.Add("stored at", Where(d.getLocation()));
  f.Add("stored", FormatTimeMs(d.getLocation().getStoredMs()) + " (" +
                      AgeMs(d.getLocation().getStoredMs()) + " ago)");
  f.Print(std::cout);
  PrintBody(std::cout, d.getMessage(), 1000);
  std::cout << "\n";
  Table table({"GROUP", "STATE", "DELIVERIES", "DETAIL"});
  for (auto s : d.getDeliveries()) {
    table.AddRow({wire::ToString(s.getGroup()), wire::ToString(s.getState()),
                  s.getDeliveryCount() == 0 ? "-" : std::to_string(s.getDeliveryCount()),
                  s.getDetail().size() == 0 ? "-" : OneLine(wire::ToString(s.getDetail()), 100)});
  }
  table.Print(std::cout, "no consumer group reads this topic");
  return kExitOk;
}

int Find(Ctl& ctl, const FindArgs& args) {
  if (Status s = ValidateNameOrSystem("topic", args.topic); !s.ok()) {
    return ctl.Usage(s.message());
  }
  if (args.key.empty()) return ctl.Usage("--key must not be empty");
  auto reply = ctl.Call([&](wire::Envelope::Builder e) {
    auto f = e.initFindMessages();
    f.setTopic(args.topic);
    f.setKey(args.key);
    f.setLimit(args.limit);
  });
  if (!reply.ok()) return ctl.Fail(reply.status());
  auto ok = reply->envelope().getFindMessagesOk();
  if (ctl.json()) {
    nlohmann::json j = {{"messages", nlohmann::json::array()},
                        {"scanned", ok.getScanned()},
                        {"truncated", ok.getTruncated()}};
    for (auto m : ok.getMessages()) {
      nlohmann::json props = nlohmann::json::object();
      for (auto p : m.getProperties()) {
        props[wire::ToString(p.getKey())] = wire::ToString(p.getValue());
      }
      j["messages"].push_back({{"id", wire::ToString(m.getId())},
                               {"key", wire::ToString(m.getKey())},
                               {"location", LocationJson(m.getLocation())},
                               {"body_bytes", m.getBodyBytes()},
                               {"properties", props}});
    }
    PrintJson(j);
    return kExitOk;
  }
  Table table({"ID", "QUEUE", "OFFSET", "STORED", "BYTES", "PROPERTIES"});
  for (auto m : ok.getMessages()) {
    std::string props;
    for (auto p : m.getProperties()) {
      props += (props.empty() ? "" : " ") + wire::ToString(p.getKey()) + "=" +
               wire::ToString(p.getValue());
    }
    table.AddRow({wire::ToString(m.getId()), std::to_string(m.getLocation().getQueue()),
                  std::to_string(m.getLocation().getOffset()),
                  FormatTimeMs(m.getLocation().getStoredMs()), std::to_string(m.getBodyBytes()),
                  props.empty() ? "-" : OneLine(props, 80)});
  }
  table.Print(std::cout, "no message with key '" + args.key + "' in topic '" + args.topic + "'");
  if (ok.getTruncated()) {
    std::cerr << "txmqctl: stopped after scanning " << ok.getScanned()
              << " messages; older ones were not searched\n";
  }
  return kExitOk;
}

}  // namespace

void AddMsgCommand(CLI::App& app, Ctl& ctl, Runner& run) {
  auto* noun = app.add_subcommand("msg",
                                  "Stored messages: show one by id, find them by key\n"
                                  "Examples:\n"
                                  "  txmqctl msg show 0190a1b2-...\n"
                                  "  txmqctl msg find --topic orders --key 42 --limit 5");
  noun->require_subcommand(1);

  auto id = std::make_shared<std::string>();
  auto* show = noun->add_subcommand(
      "show",
      "A message's headers, properties, body preview, where it is stored and its\n"
      "delivery state in each consumer group\n"
      "Example: txmqctl msg show 0190a1b2-7c3d-7e4f-8a9b-0c1d2e3f4a5b");
  show->add_option("id", *id, "Message id")->required();
  show->callback([&ctl, &run, id] { run = [&ctl, id] { return Show(ctl, *id); }; });

  auto args = std::make_shared<FindArgs>();
  auto* find = noun->add_subcommand("find",
                                    "Messages of a topic with a key, newest first\n"
                                    "Example: txmqctl msg find --topic orders --key 42 --limit 5");
  find->add_option("--topic,-t", args->topic, "Topic")->required();
  find->add_option("--key,-k", args->key, "Key")->required();
  find->add_option("--limit,-n", args->limit, "Most messages shown")
      ->check(CLI::Range(1, 10000))
      ->capture_default_str();
  find->callback([&ctl, &run, args] { run = [&ctl, args] { return Find(ctl, *args); }; });
}

}  // namespace txmq::ctl
