// What a broker group keeps in the coordination store, and where.
//
// Keys (DESIGN.md "Cluster: membership, election and the ISR"):
//
//   /txmq/<cluster>/brokers/<node>       NodeRegistration, put with the
//                                        node's lease (gone when it ends)
//   /txmq/<cluster>/groups/<group>/state GroupState, no lease: it outlives
//                                        every broker
//
// Values are JSON objects (the grammar is at the top of group_state.cc).
// Decoding ignores fields it does not know, so a later version may add
// some; it rejects a record that breaks the rules every writer keeps
// (epoch >= 1, the leader in the ISR) as kCorruption.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "txmq/status.h"

namespace txmq::cluster {

std::string BrokerKey(const std::string& cluster, const std::string& node);
std::string GroupStateKey(const std::string& cluster, const std::string& group);

// The value of a broker's liveness key: where to reach it.
struct NodeRegistration {
  std::string url;    // its listen URL (clients and replication)
  std::string group;  // the broker group it serves

  bool operator==(const NodeRegistration&) const = default;
};

std::string EncodeNodeRegistration(const NodeRegistration& r);
Result<NodeRegistration> DecodeNodeRegistration(const std::string& json);

// A group's leader, its epoch and its in-sync replica set. Every change of
// it is a transaction conditioned on the mod revision it was read at.
struct GroupState {
  // Grows by one with every election; a leader acts only in its own. Never
  // 0 in a stored record.
  int64_t epoch = 0;
  // The node that won the election of `epoch`; empty: none (not written by
  // this version, accepted when read).
  std::string leader;
  // The nodes that hold every acknowledged entry, the leader first. Only a
  // member may be elected.
  std::vector<std::string> isr;

  bool InIsr(const std::string& node) const;
  bool operator==(const GroupState&) const = default;
};

std::string EncodeGroupState(const GroupState& s);
// kCorruption naming the problem when `json` is not a valid record.
Result<GroupState> DecodeGroupState(const std::string& json);

}  // namespace txmq::cluster
