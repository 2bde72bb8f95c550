// txmqctl group list | show: consumer groups, their members and progress
// (delete, reset: cmd_lifecycle.cc).
#include <iostream>

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

int List(Ctl& ctl) {
  auto reply = ctl.Call([](wire::Envelope::Builder e) { e.setGroupList(); });
  if (!reply.ok()) return ctl.Fail(reply.status());
  auto groups = reply->envelope().getGroupListOk().getGroups();
  if (ctl.json()) {
    nlohmann::json j = {{"groups", nlohmann::json::array()}};
    for (auto g : groups) j["groups"].push_back(GroupJson(g, false));
    PrintJson(j);
    return kExitOk;
  }
  Table table(
      {"GROUP", "TOPICS", "MEMBERS", "LAG", "IN FLIGHT", "RETRYING", "DEAD LETTERS", "EXPIRED"});
  for (auto g : groups) {
    table.AddRow({wire::ToString(g.getName()), OneLine(Joined(g.getTopics()), 60),
                  std::to_string(g.getMembers().size()), std::to_string(g.getLag()),
                  std::to_string(g.getInFlight()), std::to_string(g.getRetrying()),
                  std::to_string(g.getDeadLetters()), std::to_string(g.getExpired())});
  }
  table.Print(std::cout, "no consumer groups");
  return kExitOk;
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
  Table members({"CLIENT", "SOFTWARE", "CONNECTED", "LAST SEEN"});
  for (auto m : g.getMembers()) {
    members.AddRow({wire::ToString(m.getClientId()), wire::ToString(m.getSoftware()),
                    AgeMs(m.getConnectedMs()) + " ago",
                    FormatDurationMs(m.getLastSeenAgoMs()) + " ago"});
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

int Show(Ctl& ctl, const std::string& name) {
  if (Status s = ValidateName("group", name); !s.ok()) return ctl.Usage(s.message());
  auto reply = ctl.Call([&](wire::Envelope::Builder e) { e.setGroupShow(name); });
  if (!reply.ok()) return ctl.Fail(reply.status());
  auto g = reply->envelope().getGroupShowOk();
  if (ctl.json()) {
    PrintJson(GroupJson(g, true));
  } else {
    PrintGroup(g);
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
      "Every consumer group with its lag, in-flight, retrying and dead letters\n"
      "Example: txmqctl group list --json");
  list->callback([&ctl, &run] { run = [&ctl] { return List(ctl); }; });

  auto name = std::make_shared<std::string>();
  auto* show = noun->add_subcommand(
      "show",
      "A group's connected members, lag per queue, in-flight leases and messages\n"
      "waiting for a redelivery\n"
      "Example: txmqctl group show billing");
  show->add_option("group", *name, "Consumer group")->required();
  show->callback([&ctl, &run, name] { run = [&ctl, name] { return Show(ctl, *name); }; });

  AddGroupChangeCommands(*noun, ctl, run);
}

}  // namespace txmq::ctl
