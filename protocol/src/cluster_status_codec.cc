#include "protocol/src/cluster_status_codec.h"

namespace txmq::wire {

namespace {

std::string Str(capnp::Text::Reader t) { return std::string(t.cStr(), t.size()); }

}  // namespace

void FillClusterStatus(const ClusterStatusView& v, ClusterStatus::Builder out) {
  out.setMember(v.member);
  out.setCluster(v.cluster);
  out.setGroup(v.group);
  out.setNode(v.node);
  out.setLeading(v.leading);
  out.setLeader(v.leader);
  out.setLeaderUrl(v.leader_url);
  out.setEpoch(v.epoch);
  auto isr = out.initIsr(static_cast<unsigned>(v.isr.size()));
  for (unsigned i = 0; i < isr.size(); ++i) isr.set(i, v.isr[i]);
  out.setMinIsr(v.min_isr);
  out.setLastIndex(v.last_index);
  out.setCommitIndex(v.commit_index);
  out.setCoordinatorError(v.coordinator_error);
  auto replicas = out.initReplicas(static_cast<unsigned>(v.replicas.size()));
  for (unsigned i = 0; i < replicas.size(); ++i) {
    const ReplicaStatusView& r = v.replicas[i];
    auto b = replicas[i];
    b.setNode(r.node);
    b.setLeader(r.leader);
    b.setInIsr(r.in_isr);
    b.setProgressKnown(r.progress_known);
    b.setLogIndex(r.log_index);
    b.setLagEntries(r.lag_entries);
    b.setLastContactMs(r.last_contact_ms);
  }
  auto groups = out.initGroups(static_cast<unsigned>(v.groups.size()));
  for (unsigned i = 0; i < groups.size(); ++i) {
    const GroupLeaderView& g = v.groups[i];
    auto b = groups[i];
    b.setGroup(g.group);
    b.setLeader(g.leader);
    b.setLeaderUrl(g.leader_url);
    b.setEpoch(g.epoch);
    auto urls = b.initNodeUrls(static_cast<unsigned>(g.node_urls.size()));
    for (unsigned u = 0; u < urls.size(); ++u) urls.set(u, g.node_urls[u]);
  }
}

ClusterStatusView ReadClusterStatus(ClusterStatus::Reader in) {
  ClusterStatusView v;
  v.member = in.getMember();
  v.cluster = Str(in.getCluster());
  v.group = Str(in.getGroup());
  v.node = Str(in.getNode());
  v.leading = in.getLeading();
  v.leader = Str(in.getLeader());
  v.leader_url = Str(in.getLeaderUrl());
  v.epoch = in.getEpoch();
  for (auto n : in.getIsr()) v.isr.push_back(Str(n));
  v.min_isr = in.getMinIsr();
  v.last_index = in.getLastIndex();
  v.commit_index = in.getCommitIndex();
  v.coordinator_error = Str(in.getCoordinatorError());
  for (auto r : in.getReplicas()) {
    v.replicas.push_back({Str(r.getNode()), r.getLeader(), r.getInIsr(), r.getProgressKnown(),
                          r.getLogIndex(), r.getLagEntries(), r.getLastContactMs()});
  }
  for (auto g : in.getGroups()) {
    GroupLeaderView group{
        Str(g.getGroup()), Str(g.getLeader()), Str(g.getLeaderUrl()), g.getEpoch(), {}};
    for (auto url : g.getNodeUrls()) group.node_urls.push_back(Str(url));
    v.groups.push_back(std::move(group));
  }
  return v;
}

}  // namespace txmq::wire
