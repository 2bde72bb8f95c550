#include "broker/src/txmqd_cluster.h"

#include <filesystem>
#include <iostream>
#include <sstream>

#include "broker/src/auth/security.h"
#include "broker/src/cluster/placement_directory.h"
#include "broker/src/cluster_status_reply.h"
#include "broker/src/server.h"
#include "broker/src/standby_responder.h"
#include "protocol/src/curve_keys.h"
#include "protocol/src/log.h"

namespace txmq::broker {

namespace {

std::vector<std::string> SplitComma(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream in(text);
  for (std::string part; std::getline(in, part, ',');) {
    if (!part.empty()) out.push_back(part);
  }
  return out;
}

// CURVE on the replication links: this node's secret key and each peer's
// public key, or plaintext, which an address other machines can reach
// takes only with --insecure: whoever reaches a plaintext replication port
// can speak as a peer and write into the group's log.
Status ReplicationKeys(const ClusterFlags& f, const BrokerOptions& o,
                       cluster::ClusterNodeOptions& c) {
  if (f.replication_key.empty()) {
    if (!f.replication_peer_keys.empty()) {
      return Status::InvalidArgument(
          "--replication-peer-keys needs --replication-key (this node's own secret key)");
    }
    if (!o.insecure && !auth::IsLoopbackEndpoint(f.replication_listen)) {
      return Status::InvalidArgument(
          "--replication-listen " + f.replication_listen +
          " is reachable from other machines, and without CURVE anyone who reaches it could "
          "write into the group's log as a peer. Use --replication-key FILE "
          "--replication-peer-keys DIR, listen on 127.0.0.1, or accept plaintext with "
          "--insecure");
    }
    return Status::OK();
  }
  if (!curve::Available()) {
    return Status::InvalidArgument("--replication-key: this libzmq has no CURVE support");
  }
  if (f.replication_peer_keys.empty()) {
    return Status::InvalidArgument(
        "--replication-key needs --replication-peer-keys DIR (NODE.pub of every peer)");
  }
  auto secret = curve::ReadKeyFile(f.replication_key, "--replication-key");
  if (!secret.ok()) return secret.status();
  c.replication_secret_key = *secret;
  for (cluster::ZmqPeer& peer : c.peers) {
    const std::string path = f.replication_peer_keys + "/" + peer.name + ".pub";
    auto key = curve::ReadKeyFile(path, "--replication-peer-keys (peer " + peer.name + ")");
    if (!key.ok()) return key.status();
    peer.public_key = *key;
  }
  return Status::OK();
}

}  // namespace

void AddClusterFlags(CLI::App& app, ClusterFlags& f) {
  app.add_option("--etcd", f.etcd,
                 "Join a replicated broker group: etcd's client URL(s), comma-separated "
                 "(http://127.0.0.1:2379; only the first is used yet). Without it txmqd is a "
                 "single broker and every other cluster flag is refused");
  app.add_option("--cluster", f.cluster, "With --etcd: the cluster's name (etcd key prefix)")
      ->capture_default_str();
  app.add_option("--group", f.group,
                 "With --etcd: this node's broker group; its members replicate one log");
  app.add_option("--node", f.node,
                 "With --etcd: this node's name in its group (default: --name); unique, no '/'");
  app.add_option("--replication-listen", f.replication_listen,
                 "With --etcd: ZeroMQ endpoint where this node takes replication traffic, "
                 "e.g. tcp://127.0.0.1:7900 (plaintext: keep it on a private network)");
  app.add_option("--peers", f.peers,
                 "With --etcd: the group's other nodes and their --replication-listen, "
                 "comma-separated NODE=ENDPOINT (b=tcp://10.0.0.2:7900,c=tcp://10.0.0.3:7900)");
  app.add_option("--replication-key", f.replication_key,
                 "With --etcd: this node's CURVE secret key file for replication links "
                 "(txmqctl keygen NODE writes NODE.key and NODE.pub). Encrypts them and admits "
                 "only the peers whose public keys --replication-peer-keys holds. Without it "
                 "replication is plaintext, and a --replication-listen other machines can reach "
                 "needs --insecure");
  app.add_option("--replication-peer-keys", f.replication_peer_keys,
                 "With --replication-key: a directory holding NODE.pub, the public key of each "
                 "node named in --peers");
  app.add_option("--min-isr", f.min_isr,
                 "With --etcd: a send, an end or an ack is answered only once this many nodes "
                 "(every in-sync one, at least this many) have it on disk; 1 is a single "
                 "node's durability, 2 survives a lost node. Each node fsyncs its log before "
                 "it counts, whatever --flush says")
      ->check(CLI::Range(1, 16))
      ->capture_default_str();
  app.add_option("--lease-ttl", f.lease_ttl_seconds,
                 "With --etcd: seconds (1 to 60) this node's liveness lease lasts without a "
                 "keep-alive (sent every third of it). A dead or cut-off leader is replaced "
                 "about this long after it stopped: shorter fails over sooner, longer "
                 "rides out longer stalls of the node or etcd without an election. The same "
                 "on every node of a group")
      ->capture_default_str();
  app.add_option("--group-weight", f.group_weight,
                 "With --etcd: this group's share (1 to 1000) of the queues of topics placed "
                 "from now on, relative to the other groups' weights: a group of weight 2 gets "
                 "about twice the queues of one of weight 1. Stored placements never move. "
                 "The same on every node of a group")
      ->capture_default_str();
}

Result<cluster::ClusterNodeOptions> ClusterOptions(const ClusterFlags& f, const BrokerOptions& o) {
  cluster::ClusterNodeOptions c;
  if (f.etcd.empty()) {
    if (!f.group.empty() || !f.node.empty() || !f.replication_listen.empty() || !f.peers.empty() ||
        f.min_isr != 1 || !f.replication_key.empty() || !f.replication_peer_keys.empty() ||
        f.lease_ttl_seconds != 3 || f.group_weight != 1) {
      return Status::InvalidArgument(
          "--group, --node, --replication-listen, --peers, --replication-key, "
          "--replication-peer-keys, --min-isr, --lease-ttl and --group-weight need --etcd "
          "(without it txmqd is a single broker)");
    }
    return c;
  }
  c.etcd_endpoints = SplitComma(f.etcd);
  for (const std::string& url : c.etcd_endpoints) {
    if (url.rfind("http://", 0) != 0) {
      return Status::InvalidArgument("--etcd " + url + ": not an http:// URL");
    }
  }
  if (f.group.empty()) return Status::InvalidArgument("--etcd needs --group NAME");
  if (f.replication_listen.empty()) {
    return Status::InvalidArgument("--etcd needs --replication-listen ENDPOINT");
  }
  if (o.listen.find('*') != std::string::npos) {
    return Status::InvalidArgument("--listen " + o.listen +
                                   ": with --etcd it is stored for clients, so name the port");
  }
  if (o.repair) return Status::InvalidArgument("--repair: not with --etcd (the log is the record)");
  for (const auto& [flag, name] : {std::pair<std::string, std::string>{"--cluster", f.cluster},
                                   {"--group", f.group},
                                   {"--node", f.node.empty() ? o.name : f.node}}) {
    if (name.empty() || name.find('/') != std::string::npos) {
      return Status::InvalidArgument(flag + " '" + name +
                                     "': a name must be non-empty without '/' (it is part of "
                                     "etcd keys)");
    }
  }
  c.cluster = f.cluster;
  c.group = f.group;
  c.node = f.node.empty() ? o.name : f.node;
  c.client_url = o.listen;
  c.replication_bind = f.replication_listen;
  for (const std::string& peer : SplitComma(f.peers)) {
    const size_t eq = peer.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == peer.size()) {
      return Status::InvalidArgument("--peers " + peer + ": not NODE=ENDPOINT");
    }
    c.peers.push_back({peer.substr(0, eq), peer.substr(eq + 1), ""});
  }
  if (Status keys = ReplicationKeys(f, o, c); !keys.ok()) return keys;
  c.min_isr = f.min_isr;
  if (c.min_isr > c.peers.size() + 1) {
    return Status::InvalidArgument("--min-isr " + std::to_string(c.min_isr) +
                                   " is more than the group's " +
                                   std::to_string(c.peers.size() + 1) + " nodes (--peers)");
  }
  if (f.lease_ttl_seconds < kMinLeaseTtlSeconds || f.lease_ttl_seconds > kMaxLeaseTtlSeconds) {
    return Status::InvalidArgument(
        "--lease-ttl " + std::to_string(f.lease_ttl_seconds) +
        ": the lease TTL is whole seconds from " + std::to_string(kMinLeaseTtlSeconds) + " to " +
        std::to_string(kMaxLeaseTtlSeconds) +
        " (below 1 s etcd cannot keep it alive; above 60 s a dead leader's group waits that long)");
  }
  c.lease_ttl = std::chrono::seconds(f.lease_ttl_seconds);
  if (f.group_weight < 1 || f.group_weight > static_cast<int>(cluster::kMaxGroupWeight)) {
    return Status::InvalidArgument("--group-weight " + std::to_string(f.group_weight) +
                                   ": a group's weight is 1 to " +
                                   std::to_string(cluster::kMaxGroupWeight));
  }
  c.group_weight = static_cast<uint32_t>(f.group_weight);
  c.log_dir = o.data_dir + "/replica";
  c.segment_bytes = o.segment_bytes;
  c.cached_log_bytes = o.cached_log_bytes;
  return c;
}

ClusterStart StartClusterNode(
    const cluster::ClusterNodeOptions& options, BrokerOptions& o, const sigset_t& signals,
    int* exit_code,
    const std::function<void(std::shared_ptr<const cluster::HealthBoard>)>& joined) {
  auto log = Logger("txmqd");
  std::error_code ec;
  std::filesystem::create_directories(o.data_dir, ec);
  // The store this node continues if it wins: applied while it follows,
  // so that a failover replays the last moments, not the whole log.
  // Opened first: continuing the one kept by the last run checks it
  // against the replica log before the replication thread may change it.
  BrokerOptions store_options = o;
  store_options.data_dir += "/store";
  storage::StoreOptions standby_options = StoreOptionsFor(store_options);
  standby_options.sync = false;  // the replica log's fsync is the one that counts
  auto opened = StandbyStore::Open(standby_options, options.log_dir, options.cached_log_bytes);
  if (!opened.ok()) {
    std::cerr << "txmqd: cannot open the store in " << store_options.data_dir << ": "
              << opened.status().ToString() << "\n";
    *exit_code = 1;
    return {};
  }
  auto node = cluster::ClusterNode::Start(options);
  if (!node.ok()) {
    std::cerr << "txmqd: cannot join group " << options.group << ": " << node.status().ToString()
              << "\n";
    *exit_code = 1;
    return {};
  }
  // Declared after the node, so destroyed before it on every return: its
  // thread reads the node until it is joined.
  std::unique_ptr<StandbyStore> standby = std::move(opened.value());
  standby->Follow([n = node->get()] { return n->follower_committed(); },
                  [n = node->get()](uint64_t applied) { n->set_store_applied(applied); });
  if (joined) joined((*node)->health());
  log->info("following; serving clients once this node leads group {}", options.group);
  // Until then clients hear where the leader is: with CURVE on a CURVE
  // server admitting the ACL's keys, as the broker will.
  auto started = StandbyResponder::Start(
      o.listen, options.node, [n = node->get()] { return n->leader_url(); },
      [n = node->get(), board = (*node)->health()] {
        wire::ClusterStatusView v = ClusterStatusOf(board->Read());
        v.groups = n->Groups();
        return v;
      },
      o);
  if (!started.ok()) {
    std::cerr << "txmqd: " << started.status().message() << "\n";
    *exit_code = 1;
    return {};
  }
  std::unique_ptr<StandbyResponder> responder = std::move(started.value());
  while (!(*node)->WaitUntilLeading(std::chrono::milliseconds(200))) {
    if (standby->WantsStartOver()) {
      if (Status s = standby->StartOver(); !s.ok()) {
        std::cerr << "txmqd: cannot build the store in " << store_options.data_dir
                  << " again: " << s.ToString() << "\n";
        *exit_code = 1;
        return {};
      }
    }
    const timespec now{0, 0};
    const int sig = sigtimedwait(&signals, nullptr, &now);
    if (sig == SIGINT || sig == SIGTERM) {
      log->info("stopping before leading");
      *exit_code = 0;
      return {};
    }
    if (sig == SIGHUP && responder->curve()) {
      // A key revoked while this node follows is refused here at once.
      if (Status s = responder->ReloadAcl(); s.ok()) {
        log->info("SIGHUP: reloaded ACL {}", o.acl_file);
      } else {
        log->error("SIGHUP: ACL {} NOT reloaded, the previous one stays in force: {}", o.acl_file,
                   s.message());
      }
    }
  }
  responder.reset();  // frees the endpoint for the broker
  // The broker continues that store with the committed rounds it lacks.
  o.data_dir = store_options.data_dir;
  o.replicator = node->get();
  o.kept_store = standby.get();
  log->info("leading; the store kept while following holds {} entries", standby->applied());
  return {std::move(node.value()), std::move(standby)};
}

}  // namespace txmq::broker
