// txmqd's cluster flags (--etcd and friends) and the start of a cluster
// node: follow until this node leads, rebuild the store from the
// committed entries, then let main start the broker on it.
#pragma once

#include <signal.h>

#include <CLI/CLI.hpp>
#include <functional>
#include <memory>
#include <string>

#include "broker/src/cluster/cluster_node.h"
#include "broker/src/standby_store.h"
#include "txmq/broker.h"
#include "txmq/status.h"

namespace txmq::broker {

struct ClusterFlags {
  std::string etcd;  // "": a single node
  std::string cluster = "txmq";
  std::string group;
  std::string node;
  std::string replication_listen;
  std::string peers;  // NODE=ENDPOINT,...
  size_t min_isr = 1;
  std::string replication_key;        // this node's CURVE secret key file
  std::string replication_peer_keys;  // directory of NODE.pub, one per peer
  // The liveness lease's TTL (ClusterNodeOptions::lease_ttl). Like
  // --min-isr, refused without --etcd unless at its default (the sample
  // config file names every key at its default).
  int lease_ttl_seconds = 3;
  // This group's share of new topics' queues (ClusterNodeOptions::
  // group_weight); refused without --etcd unless at its default.
  int group_weight = 1;
};

// --lease-ttl's range in seconds: at least one keep-alive round trip to
// etcd, at most what leaves a dead leader's group waiting a minute.
inline constexpr int kMinLeaseTtlSeconds = 1;
inline constexpr int kMaxLeaseTtlSeconds = 60;

void AddClusterFlags(CLI::App& app, ClusterFlags& flags);
// The node's options from the flags; kInvalidArgument naming the flag.
Result<cluster::ClusterNodeOptions> ClusterOptions(const ClusterFlags& flags,
                                                   const BrokerOptions& o);
// A node that leads, and the store it kept while it followed (its thread
// reads the node: destroyed first).
struct ClusterStart {
  std::unique_ptr<cluster::ClusterNode> node;
  std::unique_ptr<StandbyStore> standby;
};
// Starts the node, and the store o.data_dir + "/store" it keeps applied
// from the committed entries while it follows, and waits until it may
// serve (it leads); then points `o` at that store (which the broker
// continues) and at the node. Null node (and `*exit_code` set: 0 on a
// signal in `signals`, 1 on an error) when it stops first. `joined` is
// called with the node's health board once it runs, before it leads.
ClusterStart StartClusterNode(
    const cluster::ClusterNodeOptions& options, BrokerOptions& o, const sigset_t& signals,
    int* exit_code, const std::function<void(std::shared_ptr<const cluster::HealthBoard>)>& joined);

}  // namespace txmq::broker
