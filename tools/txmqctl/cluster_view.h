// How txmqctl cluster status prints a group's state: a block of fields and
// a table of replicas for people, one JSON document for scripts.
#pragma once

#include <nlohmann/json.hpp>
#include <ostream>
#include <string>
#include <vector>

#include "protocol/src/cluster_status_codec.h"

namespace txmq::ctl {

// Whose view is shown: the leader's (with each follower's lag), or the
// asked node's own (it does not lead, and the leader was not asked or not
// reached; `note` says which).
struct ClusterReport {
  wire::ClusterStatusView status;
  std::string asked;  // the URL that answered
  std::string note;   // why this is not the leader's view ("" when it is)
};

// `reports`: the group of the --broker list first, then every other group
// of the cluster, each from its own leader where one answered.
nlohmann::json ClusterJson(const std::vector<ClusterReport>& reports);
void PrintCluster(std::ostream& out, const std::vector<ClusterReport>& reports);

}  // namespace txmq::ctl
