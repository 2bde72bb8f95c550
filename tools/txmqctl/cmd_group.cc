// txmqctl group list | show: consumer groups, their members and progress
// (delete, reset: cmd_lifecycle.cc).
#include <functional>
#include <iostream>
#include <utility>
#include <vector>

#include "protocol/src/cluster_status_codec.h"
#include "protocol/src/message_codec.h"
#include "protocol/src/util.h"
#include "tools/txmqctl/ctl.h"
#include "tools/txmqctl/table.h"
#include "txmq/names.h"

namespace txmq::ctl {

namespace {

std::string Joined(capnp::List<capnp::Text>::Reader list) {
  std::string out;
  for (auto t : list) out += (out.empty() ? "" : ",") + wire::ToString(t);
  return out.empty() ? "-" : out;
}

nlohmann::json GroupJson(wire::GroupInfo::Reader g, bool detailed) {
  nlohmann::json j = {{"name", wire::ToString(g.getName())}, {"topics", nlohmann::json::array()},
                      {"members", nlohmann::json::array()},  {"lag", g.getLag()},
                      {"in_flight", g.getInFlight()},        {"retrying", g.getRetrying()},
                      {"dead_letters", g.getDeadLetters()},  {"expired", g.getExpired()}};
  for (auto t : g.getTopics()) j["topics"].push_back(wire::ToString(t));
  for (auto m : g.getMembers()) {
    j["members"].push_back({{"client_id", wire::ToString(m.getClientId())},
                            {"instance", wire::ToString(m.getInstance())},
                            {"software", wire::ToString(m.getSoftware())},
                            {"connected_ms", m.getConnectedMs()},
                            {"last_seen_ago_ms", m.getLastSeenAgoMs()}});
  }
  if (!detailed) return j;
  j["queues"] = nlohmann::json::array();
  for (auto c : g.getCursors()) {
    j["queues"].push_back({{"topic", wire::ToString(c.getTopic())},
                           {"queue", c.getQueue()},
                           {"floor", c.getFloor()},
                           {"next", c.getNext()},
                           {"end", c.getEnd()},
                           {"lag", c.getLag()},
                           {"in_flight", c.getInFlight()},
                           {"expired", c.getExpired()},
                           {"owner", wire::ToString(c.getOwner())},
                           {"handing_over", c.getHandingOver()}});
  }
  j["retries"] = nlohmann::json::array();
  for (auto r : g.getRetries()) {
    j["retries"].push_back({{"retry_id", r.getRetryId()},
                            {"message_id", wire::ToString(r.getMessageId())},
                            {"topic", wire::ToString(r.getTopic())},
                            {"queue", r.getQueue()},
                            {"offset", r.getOffset()},
                            {"delivery_count", r.getDeliveryCount()},
                            {"due_ms", r.getDueMs()},
                            {"leased", r.getLeased()}});
  }
  return j;
}

void PrintGroup(wire::GroupInfo::Reader g) {
  Fields f;
  f.Add("group", wire::ToString(g.getName()));
  f.Add("topics", Joined(g.getTopics()));
  f.Add("lag", std::to_string(g.getLag()));
  f.Add("in flight", std::to_string(g.getInFlight()));
  f.Add("retrying", std::to_string(g.getRetrying()));
  f.Add("dead letters", g.getDeadLetters() == 0
                            ? "0"
                            : std::to_string(g.getDeadLetters()) + " (see: txmqctl dlq list " +
                                  wire::ToString(g.getName()) + ")");
  if (g.getExpired() > 0) {
    f.Add("expired", std::to_string(g.getExpired()) +
                         " (deleted by retention before the group received them; since the "
                         "broker started)");
  }
  f.Print(std::cout);

  std::cout << "\nmembers:\n";
  // In a cluster of several broker groups a consumer is one connection at
  // each, under another client id ("ID.G"): the instance column says
  // which consumer it is, shown when some member has one of its own.
  bool instances = false;
  for (auto m : g.getMembers()) {
    instances = instances || (m.getInstance().size() != 0 && m.getInstance() != m.getClientId());
  }
  std::vector<std::string> head = {"CLIENT", "SOFTWARE", "CONNECTED", "LAST SEEN"};
  if (instances) head.insert(head.begin() + 1, "INSTANCE");
  Table members(head);
  for (auto m : g.getMembers()) {
    std::vector<std::string> row = {
        wire::ToString(m.getClientId()), wire::ToString(m.getSoftware()),
        AgeMs(m.getConnectedMs()) + " ago", FormatDurationMs(m.getLastSeenAgoMs()) + " ago"};
    if (instances) row.insert(row.begin() + 1, wire::ToString(m.getInstance()));
    members.AddRow(row);
  }
  members.Print(std::cout, "no consumer of this group is connected");

  std::cout << "\nqueues:\n";
  Table queues({"TOPIC", "QUEUE", "FLOOR", "NEXT", "END", "LAG", "IN FLIGHT", "EXPIRED", "OWNER"});
  for (auto c : g.getCursors()) {
    std::string owner = c.getOwner().size() == 0 ? "-" : wire::ToString(c.getOwner());
    if (c.getHandingOver()) owner += " (handing over)";
    queues.AddRow({wire::ToString(c.getTopic()), std::to_string(c.getQueue()),
                   std::to_string(c.getFloor()), std::to_string(c.getNext()),
                   std::to_string(c.getEnd()), std::to_string(c.getLag()),
                   std::to_string(c.getInFlight()), std::to_string(c.getExpired()), owner});
  }
  queues.Print(std::cout, "the group has not read any topic yet");

  std::cout << "\nretrying:\n";
  Table retries({"MESSAGE", "TOPIC", "QUEUE", "OFFSET", "DELIVERIES", "NEXT DELIVERY"});
  const int64_t now = NowMs();
  for (auto r : g.getRetries()) {
    const std::string when = r.getLeased()         ? "leased now"
                             : r.getDueMs() <= now ? "due"
                                                   : "in " + FormatDurationMs(r.getDueMs() - now);
    retries.AddRow({wire::ToString(r.getMessageId()), wire::ToString(r.getTopic()),
                    std::to_string(r.getQueue()), std::to_string(r.getOffset()),
                    std::to_string(r.getDeliveryCount()), when});
  }
  retries.Print(std::cout, "no message waits for a redelivery");
  if (g.getRetries().size() < g.getRetrying()) {
    std::cout << "(the first " << g.getRetries().size() << " of " << g.getRetrying() << " shown)\n";
  }
}

int List(Ctl& ctl) {
  auto reply = ctl.Call([](wire::Envelope::Builder e) { e.setGroupList(); });
  if (!reply.ok()) return ctl.Fail(reply.status());
  std::string home;
  const std::vector<BrokerGroupView> others = OtherBrokerGroups(
      ctl, [](wire::Envelope::Builder e) { e.setGroupList(); }, &home);
  // Rows of every broker group that answered, each named in a cluster.
  std::vector<std::pair<std::string, wire::GroupInfo::Reader>> rows;
  for (auto g : reply->envelope().getGroupListOk().getGroups()) rows.emplace_back(home, g);
  for (const BrokerGroupView& v : others) {
    if (!v.reply.ok()) continue;
    for (auto g : v.reply->envelope().getGroupListOk().getGroups()) {
      rows.emplace_back(v.broker_group, g);
    }
  }
  if (ctl.json()) {
    nlohmann::json j = {{"groups", nlohmann::json::array()}};
    for (const auto& [broker_group, g] : rows) {
      nlohmann::json entry = GroupJson(g, false);
      if (!home.empty()) entry["broker_group"] = broker_group;
      j["groups"].push_back(std::move(entry));
    }
    if (!home.empty()) {
      j["unreachable_broker_groups"] = nlohmann::json::array();
      for (const BrokerGroupView& v : others) {
        if (!v.reply.ok()) {
          j["unreachable_broker_groups"].push_back(
              {{"broker_group", v.broker_group}, {"error", v.reply.status().ToString()}});
        }
      }
    }
    PrintJson(j);
    return kExitOk;
  }
  std::vector<std::string> head = {"GROUP",     "TOPICS",   "MEMBERS",      "LAG",
                                   "IN FLIGHT", "RETRYING", "DEAD LETTERS", "EXPIRED"};
  if (!home.empty()) head.insert(head.begin(), "BROKER GROUP");
  Table table(head);
  for (const auto& [broker_group, g] : rows) {
    std::vector<std::string> row = {
        wire::ToString(g.getName()),           OneLine(Joined(g.getTopics()), 60),
        std::to_string(g.getMembers().size()), std::to_string(g.getLag()),
        std::to_string(g.getInFlight()),       std::to_string(g.getRetrying()),
        std::to_string(g.getDeadLetters()),    std::to_string(g.getExpired())};
    if (!home.empty()) row.insert(row.begin(), broker_group);
    table.AddRow(row);
  }
  table.Print(std::cout, "no consumer groups");
  for (const BrokerGroupView& v : others) {
    if (!v.reply.ok()) {
      std::cout << "broker group " << v.broker_group
                << " not reachable: " << v.reply.status().ToString() << "\n";
    }
  }
  return kExitOk;
}

int Show(Ctl& ctl, const std::string& name) {
  if (Status s = ValidateName("group", name); !s.ok()) return ctl.Usage(s.message());
  auto reply = ctl.Call([&](wire::Envelope::Builder e) { e.setGroupShow(name); });
  if (!reply.ok()) return ctl.Fail(reply.status());
  auto g = reply->envelope().getGroupShowOk();
  std::string home;
  const std::vector<BrokerGroupView> others = OtherBrokerGroups(
      ctl, [&](wire::Envelope::Builder e) { e.setGroupShow(name); }, &home);
  // NOT_FOUND from another broker group: the group never read there.
  const auto unread = [](const BrokerGroupView& v) {
    return !v.reply.ok() && v.reply.status().code() == StatusCode::kNotFound;
  };
  if (ctl.json()) {
    nlohmann::json j = GroupJson(g, true);
    if (!home.empty()) {
      j["broker_group"] = home;
      j["other_broker_groups"] = nlohmann::json::array();
      for (const BrokerGroupView& v : others) {
        nlohmann::json entry = {{"broker_group", v.broker_group}};
        if (v.reply.ok()) {
          entry["group"] = GroupJson(v.reply->envelope().getGroupShowOk(), true);
        } else {
          entry["error"] = unread(v) ? "the group has not read from this broker group"
                                     : v.reply.status().ToString();
        }
        j["other_broker_groups"].push_back(std::move(entry));
      }
    }
    PrintJson(j);
    return kExitOk;
  }
  if (!others.empty()) std::cout << "broker group " << home << ":\n";
  PrintGroup(g);
  for (const BrokerGroupView& v : others) {
    std::cout << "\nbroker group " << v.broker_group << ":\n";
    if (v.reply.ok()) {
      PrintGroup(v.reply->envelope().getGroupShowOk());
    } else if (unread(v)) {
      std::cout << "the group has not read from this broker group\n";
    } else {
      std::cout << "not reachable: " << v.reply.status().ToString() << "\n";
    }
  }
  return kExitOk;
}

}  // namespace

void AddGroupCommand(CLI::App& app, Ctl& ctl, Runner& run) {
  auto* noun =
      app.add_subcommand("group",
                         "Consumer groups: list them, show one's members and progress,\n"
                         "reset one's position on a topic, delete one\n"
                         "Examples:\n"
                         "  txmqctl group list\n"
                         "  txmqctl group show billing\n"
                         "  txmqctl group reset billing --topic orders --to earliest --dry-run");
  noun->require_subcommand(1);

  auto* list = noun->add_subcommand(
      "list",
      "Every consumer group with its lag, in-flight, retrying and dead letters;\n"
      "in a cluster of several broker groups, a row per broker group it reads in\n"
      "Example: txmqctl group list --json");
  list->callback([&ctl, &run] { run = [&ctl] { return List(ctl); }; });

  auto name = std::make_shared<std::string>();
  auto* show = noun->add_subcommand(
      "show",
      "A group's connected members, lag and owner per queue, in-flight leases and\n"
      "messages waiting for a redelivery; in a cluster of several broker groups,\n"
      "as each broker group sees it (--broker-group G: as G alone sees it)\n"
      "Example: txmqctl group show billing");
  show->add_option("group", *name, "Consumer group")->required();
  show->callback([&ctl, &run, name] { run = [&ctl, name] { return Show(ctl, *name); }; });

  AddGroupChangeCommands(*noun, ctl, run);
}

}  // namespace txmq::ctl
