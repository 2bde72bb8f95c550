#include "tools/txmqctl/lifecycle_view.h"

#include <cstdio>
#include <ctime>
#include <iostream>
#include <optional>

#include "protocol/src/message_codec.h"
#include "protocol/src/util.h"
#include "tools/txmqctl/table.h"

namespace txmq::ctl {

namespace {

constexpr const char* kToForms =
    "earliest, latest, a UTC time (2026-01-31T12:00:00Z), now-DURATION (now-30m) or "
    "QUEUE:OFFSET[,QUEUE:OFFSET...] (0:15,1:20)";

bool AllDigits(const std::string& s) {
  if (s.empty() || s.size() > 19) return false;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

// "2026-01-31T12:00:00Z" or "2026-01-31T12:00:00.250Z" as epoch ms.
std::optional<int64_t> ParseUtc(const std::string& text) {
  std::tm tm{};
  int consumed = 0;
  if (std::sscanf(text.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                  &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &consumed) != 6 ||
      consumed != 19) {
    return std::nullopt;
  }
  std::string rest = text.substr(19);
  int64_t millis = 0;
  if (!rest.empty() && rest[0] == '.') {
    size_t i = 1;
    int64_t scale = 100;
    for (; i < rest.size() && rest[i] >= '0' && rest[i] <= '9'; ++i, scale /= 10) {
      millis += (rest[i] - '0') * scale;
    }
    if (i == 1) return std::nullopt;
    rest = rest.substr(i);
  }
  if (rest != "Z" || tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 || tm.tm_mday > 31 ||
      tm.tm_hour > 23 || tm.tm_min > 59 || tm.tm_sec > 60) {
    return std::nullopt;
  }
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  return static_cast<int64_t>(timegm(&tm)) * 1000 + millis;
}

std::string Joined(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& s : items) out += (out.empty() ? "" : ", ") + s;
  return out;
}

nlohmann::json ClientsJson(capnp::List<wire::ClientSummary>::Reader list) {
  nlohmann::json out = nlohmann::json::array();
  for (auto c : list) {
    out.push_back({{"client_id", wire::ToString(c.getClientId())},
                   {"group", wire::ToString(c.getGroup())},
                   {"software", wire::ToString(c.getSoftware())}});
  }
  return out;
}

void PrintClients(capnp::List<wire::ClientSummary>::Reader list, const std::string& title) {
  if (list.size() == 0) return;
  std::cout << "\n" << title << ":\n";
  Table table({"CLIENT", "GROUP", "SOFTWARE"});
  for (auto c : list) {
    table.AddRow({wire::ToString(c.getClientId()), wire::ToString(c.getGroup()),
                  wire::ToString(c.getSoftware())});
  }
  table.Print(std::cout, "");
}

std::string Redeliveries(uint64_t n) {
  return std::to_string(n) + (n == 1 ? " scheduled redelivery" : " scheduled redeliveries");
}

std::string Outcome(bool dry_run, const std::string& done, const std::string& would) {
  return dry_run ? "dry run: would " + would : done;
}

}  // namespace

Result<wire::Frame> CallLifecycle(
    Ctl& ctl, bool dry_run, bool force,
    const std::function<void(wire::LifecycleRequest::Builder)>& fill) {
  return ctl.Call([&](wire::Envelope::Builder e) {
    auto r = e.initLifecycle();
    r.setOperator(ctl.operator_name());
    r.setDryRun(dry_run);
    r.setForce(force);
    fill(r);
  });
}

std::optional<int64_t> ParseTimeArg(const std::string& text, int64_t now_ms) {
  if (text.rfind("now-", 0) == 0) {
    const int64_t ago = ParseDurationMs(text.substr(4));
    if (ago <= 0) return std::nullopt;
    return now_ms - ago;
  }
  return ParseUtc(text);
}

Result<ResetTarget> ParseResetTarget(const std::string& text, int64_t now_ms) {
  ResetTarget t;
  if (text == "earliest") return t;
  if (text == "latest") {
    t.to = wire::ResetTarget::LATEST;
    return t;
  }
  if (text.rfind("now-", 0) == 0) {
    const int64_t ago = ParseDurationMs(text.substr(4));
    if (ago <= 0) {
      return Status::InvalidArgument("--to '" + text + "': '" + text.substr(4) +
                                     "' is not a duration (e.g. now-30m, now-2h)");
    }
    t.to = wire::ResetTarget::TIME;
    t.time_ms = now_ms - ago;
    return t;
  }
  if (auto ms = ParseUtc(text)) {
    t.to = wire::ResetTarget::TIME;
    t.time_ms = *ms;
    return t;
  }
  if (text.find(':') != std::string::npos) {
    t.to = wire::ResetTarget::OFFSETS;
    size_t start = 0;
    while (start <= text.size()) {
      size_t comma = text.find(',', start);
      if (comma == std::string::npos) comma = text.size();
      const std::string item = text.substr(start, comma - start);
      const size_t colon = item.find(':');
      const std::string q = colon == std::string::npos ? "" : item.substr(0, colon);
      const std::string o = colon == std::string::npos ? "" : item.substr(colon + 1);
      if (!AllDigits(q) || !AllDigits(o) || std::stoull(q) > UINT32_MAX) {
        return Status::InvalidArgument("--to '" + text + "': '" + item +
                                       "' is not QUEUE:OFFSET (e.g. 0:15)");
      }
      t.offsets.emplace_back(static_cast<uint32_t>(std::stoull(q)), std::stoull(o));
      start = comma + 1;
    }
    return t;
  }
  return Status::InvalidArgument("--to '" + text + "' is not one of: " + kToForms);
}

nlohmann::json TopicDeletionJson(wire::TopicDeletion::Reader d) {
  auto t = d.getTopic();
  nlohmann::json j = {{"messages", t.getMessages()},
                      {"queues", nlohmann::json::array()},
                      {"groups", nlohmann::json::array()},
                      {"delayed", d.getDelayed()},
                      {"live_consumers", ClientsJson(d.getLiveConsumers())}};
  for (auto q : t.getQueues()) {
    j["queues"].push_back({{"queue", q.getQueue()},
                           {"min_offset", q.getMinOffset()},
                           {"end_offset", q.getEndOffset()}});
  }
  for (auto g : t.getGroups()) {
    j["groups"].push_back(GroupLagJson(g));
  }
  return j;
}

void PrintTopicDeletionText(wire::TopicDeletion::Reader d, bool dry_run) {
  auto t = d.getTopic();
  const std::string name = wire::ToString(t.getName());
  std::vector<std::string> groups;
  uint32_t retrying = 0;
  for (auto g : t.getGroups()) {
    groups.push_back(wire::ToString(g.getGroup()));
    retrying += g.getRetrying();
  }
  if (dry_run) {
    Fields f;
    f.Add("topic", name);
    f.Add("messages", std::to_string(t.getMessages()));
    f.Add("delayed", std::to_string(d.getDelayed()));
    f.Print(std::cout);
    std::cout << "\n";
    Table queues({"QUEUE", "MIN OFFSET", "END OFFSET", "MESSAGES"});
    for (auto q : t.getQueues()) {
      queues.AddRow({std::to_string(q.getQueue()), std::to_string(q.getMinOffset()),
                     std::to_string(q.getEndOffset()),
                     std::to_string(q.getEndOffset() - q.getMinOffset())});
    }
    queues.Print(std::cout, "no queues");
    std::cout << "\n";
    Table readers({"GROUP", "LAG", "IN FLIGHT", "RETRYING"});
    for (auto g : t.getGroups()) {
      readers.AddRow({wire::ToString(g.getGroup()), std::to_string(g.getLag()),
                      std::to_string(g.getInFlight()), std::to_string(g.getRetrying())});
    }
    readers.Print(std::cout, "no consumer group reads this topic");
    PrintClients(d.getLiveConsumers(), "live consumers (their leases end)");
    std::cout << "\n";
  }
  const std::string what =
      "topic '" + name + "' with " + Count(t.getMessages(), "message") + ", the cursors of " +
      Count(groups.size(), "group") + (groups.empty() ? "" : " (" + Joined(groups) + ")") + ", " +
      Redeliveries(retrying) + " and " + Count(d.getDelayed(), "delayed message");
  std::cout << Outcome(dry_run, "deleted " + what + "; its storage is freed in the background",
                       "delete " + what + "; nothing changed")
            << "\n";
}

void PrintTopicDeletion(Ctl& ctl, wire::TopicDeletion::Reader d, bool dry_run) {
  const std::string name = wire::ToString(d.getTopic().getName());
  if (ctl.json()) {
    nlohmann::json j = {{"action", "topic-delete"},
                        {"dry_run", dry_run},
                        {"operator", ctl.operator_name()},
                        {"topic", name}};
    j.update(TopicDeletionJson(d));
    j["other_groups"] = nlohmann::json::array();
    for (auto g : d.getOtherGroups()) j["other_groups"].push_back(wire::ToString(g));
    PrintJson(j);
    return;
  }
  PrintTopicDeletionText(d, dry_run);
  if (d.getOtherGroups().size() != 0) {
    std::vector<std::string> others;
    for (auto g : d.getOtherGroups()) others.push_back(wire::ToString(g));
    std::cout << "only this broker group's part of it: its queues on "
              << (others.size() == 1 ? "group " : "groups ") << Joined(others)
              << " stay there (txmqctl --broker-group G topic delete " << name
              << " deletes each; without --broker-group every group's part and the "
                 "placement go), and its placement stays in the cluster\n";
  }
}

void PrintGroupDeletion(Ctl& ctl, wire::GroupDeletion::Reader d, bool dry_run) {
  auto g = d.getGroup();
  const std::string name = wire::ToString(g.getName());
  std::vector<std::string> topics;
  for (auto t : g.getTopics()) topics.push_back(wire::ToString(t));
  if (ctl.json()) {
    nlohmann::json j = {{"action", "group-delete"},
                        {"dry_run", dry_run},
                        {"operator", ctl.operator_name()},
                        {"group", name},
                        {"topics", topics},
                        {"cursors", nlohmann::json::array()},
                        {"retrying", g.getRetrying()},
                        {"in_flight", g.getInFlight()},
                        {"dead_letters", g.getDeadLetters()},
                        {"retry_copies", d.getRetryCopies()},
                        {"parked_pulls", d.getParkedPulls()},
                        {"live_consumers", ClientsJson(g.getMembers())}};
    for (auto c : g.getCursors()) {
      j["cursors"].push_back({{"topic", wire::ToString(c.getTopic())},
                              {"queue", c.getQueue()},
                              {"floor", c.getFloor()},
                              {"end", c.getEnd()}});
    }
    PrintJson(j);
    return;
  }
  if (dry_run) {
    Fields f;
    f.Add("group", name);
    f.Add("topics", topics.empty() ? "-" : Joined(topics));
    f.Add("retrying", std::to_string(g.getRetrying()));
    f.Add("in flight", std::to_string(g.getInFlight()));
    f.Add("dead letters", std::to_string(g.getDeadLetters()));
    f.Add("resent copies", std::to_string(d.getRetryCopies()));
    f.Print(std::cout);
    std::cout << "\n";
    Table cursors({"TOPIC", "QUEUE", "FLOOR", "END"});
    for (auto c : g.getCursors()) {
      cursors.AddRow({wire::ToString(c.getTopic()), std::to_string(c.getQueue()),
                      std::to_string(c.getFloor()), std::to_string(c.getEnd())});
    }
    cursors.Print(std::cout, "no cursors");
    PrintClients(g.getMembers(), "live consumers (they would start the group over)");
    std::cout << "\n";
  }
  const std::string what =
      "consumer group '" + name + "': its cursors on " + Count(topics.size(), "topic") +
      (topics.empty() ? "" : " (" + Joined(topics) + ")") + ", " + Redeliveries(g.getRetrying()) +
      " and " + Count(g.getDeadLetters(), "dead letter");
  std::cout << Outcome(dry_run, "deleted " + what, "delete " + what + "; nothing changed") << "\n";
}

void PrintGroupReset(Ctl& ctl, wire::GroupResetResult::Reader r, bool dry_run,
                     const std::string& to) {
  const std::string group = wire::ToString(r.getGroup());
  const std::string topic = wire::ToString(r.getTopic());
  uint64_t again = 0, skipped = 0;
  for (auto m : r.getMoves()) {
    if (m.getTo() < m.getFrom()) again += m.getFrom() - m.getTo();
    if (m.getTo() > m.getFrom()) skipped += m.getTo() - m.getFrom();
  }
  if (ctl.json()) {
    nlohmann::json j = {{"action", "group-reset"},
                        {"dry_run", dry_run},
                        {"operator", ctl.operator_name()},
                        {"group", group},
                        {"topic", topic},
                        {"to", to},
                        {"queues", nlohmann::json::array()},
                        {"delivered_again", again},
                        {"skipped", skipped},
                        {"retries_dropped", r.getRetriesDropped()},
                        {"leases_dropped", r.getLeasesDropped()},
                        {"new_cursors", r.getNewCursors()},
                        {"live_consumers", ClientsJson(r.getLiveConsumers())}};
    for (auto m : r.getMoves()) {
      j["queues"].push_back({{"queue", m.getQueue()},
                             {"from", m.getFrom()},
                             {"to", m.getTo()},
                             {"min_offset", m.getMinOffset()},
                             {"end_offset", m.getEndOffset()}});
    }
    PrintJson(j);
    return;
  }
  // FROM is the group's floor (offsets below it were finished), TO the
  // next offset it is handed; STORED the offsets the queue keeps.
  Table moves({"QUEUE", "FROM", "TO", "STORED"});
  for (auto m : r.getMoves()) {
    const bool empty = m.getEndOffset() <= m.getMinOffset();
    moves.AddRow(
        {std::to_string(m.getQueue()), r.getNewCursors() ? "-" : std::to_string(m.getFrom()),
         std::to_string(m.getTo()),
         empty ? "none"
               : std::to_string(m.getMinOffset()) + "-" + std::to_string(m.getEndOffset() - 1)});
  }
  moves.Print(std::cout, "no queue moves");
  PrintClients(r.getLiveConsumers(), "live consumers (their leases on the topic end)");
  std::cout << "\n";
  std::string what = "group '" + group + "' on '" + topic + "' to " + to + ": " +
                     Count(again, "message") + " to deliver again, " + std::to_string(skipped) +
                     " skipped" + ", " + Redeliveries(r.getRetriesDropped()) + " dropped";
  if (r.getNewCursors()) what += " (the group had not read the topic yet)";
  std::cout << Outcome(dry_run, "moved " + what, "move " + what + "; nothing changed") << "\n";
}

void PrintDlqPurge(Ctl& ctl, wire::DlqPurgeResult::Reader p, bool dry_run) {
  const std::string group = wire::ToString(p.getGroup());
  std::vector<std::string> purged, missing;
  for (auto id : p.getPurged()) purged.push_back(wire::ToString(id));
  for (auto id : p.getMissing()) missing.push_back(wire::ToString(id));
  if (ctl.json()) {
    PrintJson({{"action", "dlq-purge"},
               {"dry_run", dry_run},
               {"operator", ctl.operator_name()},
               {"group", group},
               {"purged", purged},
               {"missing", missing},
               {"remaining", p.getRemaining()}});
    return;
  }
  for (const auto& id : purged) std::cout << id << "\n";
  const std::string what = Count(purged.size(), "dead letter") + " of group '" + group + "' (" +
                           std::to_string(p.getRemaining()) + " left)";
  std::cout << Outcome(dry_run, "purged " + what, "purge " + what + "; nothing changed") << "\n";
}

}  // namespace txmq::ctl
