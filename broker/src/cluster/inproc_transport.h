// Replication transports in one process, for deterministic tests: every
// node attaches to one InProcNetwork; a Send lands in the receiver's
// inbox at once, unless the link between the two is cut (then it is
// dropped, as a partition would).
//
// Thread safety: none; one test thread drives every node.
#pragma once

#include <deque>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>

#include "broker/src/cluster/replication_transport.h"

namespace txmq::cluster {

class InProcNetwork {
 public:
  InProcNetwork();
  ~InProcNetwork();
  InProcNetwork(const InProcNetwork&) = delete;
  InProcNetwork& operator=(const InProcNetwork&) = delete;

  // The transport of `node` (created on first use; lives as long as the
  // network).
  ReplicationTransport& Attach(const std::string& node);
  // Drops every frame between `a` and `b`, both ways, while cut.
  void Cut(const std::string& a, const std::string& b, bool cut);
  // Frames dropped so far.
  size_t dropped() const { return dropped_; }

 private:
  class Endpoint;
  bool IsCut(const std::string& a, const std::string& b) const;

  std::map<std::string, std::unique_ptr<Endpoint>> endpoints_;
  std::set<std::pair<std::string, std::string>> cut_;
  size_t dropped_ = 0;
};

}  // namespace txmq::cluster
