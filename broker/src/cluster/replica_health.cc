#include "broker/src/cluster/replica_health.h"

#include <algorithm>

namespace txmq::cluster {

std::vector<ReplicaHealth> DescribeReplicas(const std::string& self,
                                            const std::vector<std::string>& peers,
                                            const GroupState& view, uint64_t own_last,
                                            const ReplicationLeader* leader,
                                            ReplicationClock::time_point now) {
  std::vector<ReplicaLag> lags;
  if (leader != nullptr) lags = leader->Replicas(now);
  std::vector<std::string> names = peers;
  names.push_back(self);
  std::sort(names.begin(), names.end());
  std::vector<ReplicaHealth> out;
  for (const std::string& name : names) {
    ReplicaHealth r;
    r.node = name;
    r.leader = !view.leader.empty() && view.leader == name;
    r.in_isr = view.InIsr(name);
    if (name == self) {
      r.progress_known = true;
      r.log_index = own_last;  // contact stays -1: no node hears from itself
    } else if (auto lag = std::find_if(lags.begin(), lags.end(),
                                       [&](const ReplicaLag& l) { return l.node == name; });
               lag != lags.end()) {
      r.progress_known = true;
      r.log_index = lag->match;
      r.lag_entries = lag->lag;
      if (lag->since_answer) {
        r.last_contact_ms =
            std::chrono::duration_cast<std::chrono::milliseconds>(*lag->since_answer).count();
      }
    }
    out.push_back(std::move(r));
  }
  return out;
}

}  // namespace txmq::cluster
