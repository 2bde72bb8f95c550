// txmqctl cluster status: a replicated group's leader, epoch, ISR and each
// replica's lag.
//
// Every node answers a cluster status request, the ones that do not lead
// too (from what they know). Only the leader knows each follower's lag, so
// a node that does not lead is asked only for where the leader is; then
// the leader it names, then the rest of the --broker list. If no leader
// answers, the first node's own view is shown, saying so. The connections
// do not follow NOT_LEADER answers: the point is to hear from a node as
// it is, not to be moved.
#include <iostream>
#include <memory>

#include "protocol/src/broker_list.h"
#include "protocol/src/cluster_status_codec.h"
#include "protocol/src/util.h"
#include "tools/txmqctl/cluster_view.h"
#include "tools/txmqctl/ctl.h"

namespace txmq::ctl {

namespace {

using namespace std::chrono_literals;

struct StatusArgs {
  bool local = false;
};

// Asks the one node at `url`, within `budget`.
Result<wire::ClusterStatusView> Ask(Ctl& ctl, const std::string& url,
                                    std::chrono::milliseconds budget) {
  const SteadyTime deadline = SteadyClock::now() + budget;
  auto c = ctl.OpenAdmin(url, budget, /*follow_leader=*/false);
  if (!c.ok()) return c.status();
  auto request = (*c)->NewRequest();
  request.envelope().setClusterStatus();
  const auto left = std::max(
      std::chrono::duration_cast<std::chrono::milliseconds>(deadline - SteadyClock::now()), 1ms);
  auto reply = (*c)->CallSync(std::move(request), left);
  if (!reply.ok()) return reply.status();
  if (reply->envelope().which() != wire::Envelope::CLUSTER_STATUS_OK) {
    return Status::FailedPrecondition("the broker at " + url +
                                      " does not know cluster status (older than txmqctl?)");
  }
  return wire::ReadClusterStatus(reply->envelope().getClusterStatusOk());
}

// The group of the first node of `urls` that answers: the leader's view,
// unless `local` or no leader answers (then the node's own, and `note`
// says why).
Result<ClusterReport> GroupReport(Ctl& ctl, const std::vector<std::string>& urls, bool local) {
  // One URL may take the whole budget; with a list each gets a share, so a
  // hung first node leaves time for the others.
  const auto share = [&](size_t tries) {
    return tries <= 1
               ? ctl.Left()
               : std::min(ctl.Left(), std::max<std::chrono::milliseconds>(
                                          ctl.timeout() / static_cast<int64_t>(tries), 2000ms));
  };
  ClusterReport report;
  Status first_error;
  size_t asked = 0;
  for (const std::string& url : urls) {
    auto got = Ask(ctl, url, share(urls.size() - asked++));
    if (got.ok()) {
      report.status = std::move(*got);
      report.asked = url;
      break;
    }
    if (first_error.ok()) first_error = got.status();
  }
  if (report.asked.empty()) return first_error;
  const wire::ClusterStatusView first = report.status;
  if (first.member && !first.leading && !local) {
    std::vector<std::string> candidates;
    if (!first.leader_url.empty()) candidates.push_back(first.leader_url);
    for (const std::string& url : urls) {
      if (url != report.asked && url != first.leader_url) candidates.push_back(url);
    }
    std::string why = first.leader.empty() ? "no leader is known (an election runs)" : "";
    for (const std::string& url : candidates) {
      auto got = Ask(ctl, url, std::min(ctl.Left(), std::chrono::milliseconds(2000)));
      if (got.ok() && got->leading && got->group == first.group) {
        report.status = std::move(*got);
        report.asked = url;
        why.clear();
        break;
      }
      if (why.empty()) {
        why = got.ok()
                  ? "the node at " + url + " (" + got->node + ") does not lead"
                  : "the leader " + (first.leader.empty() ? url : first.leader + " at " + url) +
                        " could not be reached: " + got.status().ToString();
      }
    }
    if (!report.status.leading) {
      report.note = (why.empty() ? std::string("no leader was found") : why) + "; showing " +
                    first.node + "'s own view";
    }
  }
  return report;
}

int Show(Ctl& ctl, const StatusArgs& args) {
  // With --broker-group, that group's nodes.
  auto broker = ctl.Broker();
  if (!broker.ok()) return ctl.Fail(broker.status());
  auto urls = net::ParseBrokerList(*broker);
  if (!urls.ok()) return ctl.Usage(urls.status().message());
  auto first = GroupReport(ctl, *urls, args.local);
  if (!first.ok()) return ctl.Fail(first.status());
  std::vector<ClusterReport> reports{*first};
  // The other groups of the cluster, each asked at its own nodes (leader
  // first), as the answering node's map lists them.
  const std::vector<wire::GroupLeaderView> groups = first->status.groups;
  for (const wire::GroupLeaderView& g : groups) {
    if (args.local || g.group == first->status.group) continue;
    auto other = g.node_urls.empty()
                     ? Result<ClusterReport>(Status::Unavailable("no node of it is registered"))
                     : GroupReport(ctl, g.node_urls, false);
    if (other.ok() && other->status.group == g.group) {
      reports.push_back(std::move(*other));
      continue;
    }
    // Unreachable (or moved): what the map says of it.
    ClusterReport seen;
    seen.status.member = true;
    seen.status.cluster = first->status.cluster;
    seen.status.group = g.group;
    seen.status.leader = g.leader;
    seen.status.leader_url = g.leader_url;
    seen.status.epoch = g.epoch;
    seen.note = "no node of group " + g.group + " answered (" +
                (other.ok() ? "the node asked serves group " + other->status.group
                            : other.status().ToString()) +
                "); showing what " + first->status.node + " knows of it";
    reports.push_back(std::move(seen));
  }
  if (ctl.json()) {
    PrintJson(ClusterJson(reports));
  } else {
    PrintCluster(std::cout, reports);
  }
  return kExitOk;
}

}  // namespace

void AddClusterCommand(CLI::App& app, Ctl& ctl, Runner& run) {
  auto* noun = app.add_subcommand(
      "cluster",
      "The replicated broker groups (txmqd --etcd): leader, epoch, ISR and replicas\n"
      "Example: txmqctl --broker 7001,7002,7003 cluster status");
  noun->require_subcommand(1);
  auto args = std::make_shared<StatusArgs>();
  auto* status = noun->add_subcommand(
      "status",
      "The group's leader, epoch and in-sync replica set (ISR), and each replica's lag;\n"
      "then the same for every other group of the cluster, asked at its own nodes (with\n"
      "--local only the asked node's group).\n"
      "Any node may be asked: one that does not lead names the leader, which is asked\n"
      "next (then the rest of --broker); only the leader knows each follower's lag. If\n"
      "no leader answers, the asked node's own view is shown and 'note' says why.\n"
      "A single broker (no --etcd) says it is not a member of a group.\n"
      "Fields: view (whose view this is), leader (node and client URL, as etcd has it),\n"
      "epoch (grows with each election), isr (members holding every acknowledged\n"
      "entry; below --min-isr nothing is acknowledged), commit index (the highest entry\n"
      "every ISR member has on disk), etcd (whether the node's last tick reached it).\n"
      "Columns: NODE; ROLE (leader or follower, as etcd has it); IN ISR; LOG INDEX (the\n"
      "leader's and the asked node's: their last entry; a follower's: the highest entry\n"
      "it has fsynced that matches the leader's log, 0 until it answers a new leader);\n"
      "LAG (entries, i.e. group-commit rounds, not messages, the leader has that\n"
      "the follower has not confirmed); LAST CONTACT (since the leader last heard from\n"
      "it). '?' or '-': not known to the node that answered. Figures are as of the\n"
      "node's last lease tick (about every second).\n"
      "Examples:\n"
      "  txmqctl --broker 7001,7002,7003 cluster status\n"
      "  txmqctl --broker 7002 cluster status --local --json");
  status->add_flag("--local", args->local,
                   "Show the asked node's own view; do not look for the leader");
  status->callback([&ctl, &run, args] { run = [&ctl, args] { return Show(ctl, *args); }; });
}

}  // namespace txmq::ctl
