#include "tools/txmqctl/cluster_view.h"

#include "protocol/src/util.h"
#include "tools/txmqctl/table.h"

namespace txmq::ctl {

namespace {

std::string Join(const std::vector<std::string>& items) {
  std::string out;
  for (const std::string& s : items) out += (out.empty() ? "" : ",") + s;
  return out.empty() ? "-" : out;
}

std::string ViewOf(const wire::ClusterStatusView& s) {
  if (!s.member) return "single";
  if (s.node.empty()) return "map";  // no node of the group answered
  return s.leading ? "leader" : "follower";
}

// One group's block: its record, its replicas, and whose view it is.
nlohmann::json GroupJson(const ClusterReport& r) {
  const wire::ClusterStatusView& s = r.status;
  nlohmann::json replicas = nlohmann::json::array();
  for (const auto& p : s.replicas) {
    nlohmann::json j = {{"node", p.node},         {"role", p.leader ? "leader" : "follower"},
                        {"in_isr", p.in_isr},     {"log_index", nullptr},
                        {"lag_entries", nullptr}, {"last_contact_ms", nullptr}};
    if (p.progress_known) j["log_index"] = p.log_index;
    // Lag is the leader's to know; a follower's own view leaves it null.
    if (p.progress_known && s.leading) j["lag_entries"] = p.lag_entries;
    if (p.last_contact_ms >= 0) j["last_contact_ms"] = p.last_contact_ms;
    replicas.push_back(std::move(j));
  }
  nlohmann::json group = {
      {"group", s.group},
      {"leader", s.leader.empty() ? nlohmann::json(nullptr) : nlohmann::json(s.leader)},
      {"leader_url", s.leader_url},
      {"epoch", s.epoch},
      {"isr", s.isr},
      {"min_isr", s.min_isr},
      {"commit_index", s.leading ? nlohmann::json(s.commit_index) : nullptr},
      {"etcd_error", s.coordinator_error},
      {"replicas", std::move(replicas)},
      {"answered_by", s.node.empty() ? nlohmann::json(nullptr) : nlohmann::json(s.node)},
      {"asked", r.asked},
      {"view", ViewOf(s)}};
  if (!r.note.empty()) group["note"] = r.note;
  return group;
}

void PrintGroup(std::ostream& out, const ClusterReport& r) {
  const wire::ClusterStatusView& s = r.status;
  Fields f;
  f.Add("cluster", s.cluster);
  f.Add("group", s.group);
  const std::string leader = s.leader.empty()
                                 ? "none (an election runs)"
                                 : s.leader + (s.leader_url.empty() ? "" : " " + s.leader_url);
  if (s.node.empty()) {
    // Only the record another group's node read from etcd: nothing of
    // its ISR or replicas.
    f.Add("view", "the cluster map of the node asked first (no node of this group answered)");
    if (!r.note.empty()) f.Add("note", r.note);
    f.Add("leader", leader);
    f.Add("epoch", std::to_string(s.epoch));
    f.Print(out);
    return;
  }
  f.Add("view", s.leading ? "the leader's (" + s.node + ")"
                          : "node " + s.node + "'s own (it does not lead; no lag figures)");
  if (!r.note.empty()) f.Add("note", r.note);
  f.Add("leader", leader);
  f.Add("epoch", std::to_string(s.epoch));
  f.Add("isr", Join(s.isr) + " (" + std::to_string(s.isr.size()) + " of " +
                   std::to_string(s.replicas.size()) + "; --min-isr " + std::to_string(s.min_isr) +
                   ")");
  if (s.leading) f.Add("commit index", std::to_string(s.commit_index));
  f.Add("etcd", s.coordinator_error.empty() ? "reachable" : "unreachable: " + s.coordinator_error);
  f.Print(out);
  out << "\n";
  Table table({"NODE", "ROLE", "IN ISR", "LOG INDEX", "LAG", "LAST CONTACT"});
  for (const auto& p : s.replicas) {
    const bool lag_known = p.progress_known && s.leading;
    table.AddRow({p.node, p.leader ? "leader" : "follower", p.in_isr ? "yes" : "no",
                  p.progress_known ? std::to_string(p.log_index) : "?",
                  lag_known ? std::to_string(p.lag_entries) : "?",
                  p.node == s.node || p.last_contact_ms < 0
                      ? "-"
                      : FormatDurationMs(p.last_contact_ms) + " ago"});
  }
  table.Print(out, "no replicas known");
}

}  // namespace

nlohmann::json ClusterJson(const std::vector<ClusterReport>& reports) {
  const ClusterReport& r = reports.front();
  const wire::ClusterStatusView& s = r.status;
  if (!s.member) {
    return {{"member", false},
            {"broker", s.node},
            {"asked", r.asked},
            {"note", "a single broker (txmqd without --etcd): not a member of a replicated group"}};
  }
  nlohmann::json groups = nlohmann::json::array();
  for (const ClusterReport& g : reports) groups.push_back(GroupJson(g));
  nlohmann::json j = {{"member", true},   {"cluster", s.cluster}, {"answered_by", s.node},
                      {"asked", r.asked}, {"view", ViewOf(s)},    {"groups", std::move(groups)}};
  if (!r.note.empty()) j["note"] = r.note;
  return j;
}

void PrintCluster(std::ostream& out, const std::vector<ClusterReport>& reports) {
  const ClusterReport& first = reports.front();
  if (!first.status.member) {
    out << "broker " << first.status.node << " at " << first.asked
        << " is a single broker, not a member of a replicated group (txmqd runs without "
           "--etcd)\n";
    return;
  }
  for (size_t i = 0; i < reports.size(); ++i) {
    if (i > 0) out << "\n";
    PrintGroup(out, reports[i]);
  }
}

}  // namespace txmq::ctl
