#include "broker/src/cluster/cluster_node.h"

#include <algorithm>
#include <set>

#include "broker/src/cluster/etcd_coordinator.h"
#include "broker/src/cluster/file_replica_log.h"
#include "broker/src/cluster/group_config.h"
#include "broker/src/cluster/group_member.h"
#include "broker/src/cluster/member_thread.h"
#include "broker/src/cluster/replica_follower.h"
#include "broker/src/cluster/replica_health.h"
#include "broker/src/cluster/replication_leader.h"
#include "broker/src/cluster/replication_messages.h"
#include "protocol/src/log.h"
#include "protocol/src/util.h"

namespace txmq::cluster {

using namespace std::chrono_literals;

struct ClusterNode::Impl {
  std::unique_ptr<Coordinator> coordinator;
  // Destroyed before the coordinator it calls (it leaves the group).
  std::unique_ptr<MemberThread> member;
  std::unique_ptr<FileReplicaLog> log;
  std::unique_ptr<ReplicaFollower> follower;
  std::unique_ptr<ReplicationLeader> leader;
  std::unique_ptr<ZmqReplicationTransport> transport;
  // Tickets appended to the log in this epoch and their indexes, in order.
  std::deque<std::pair<uint64_t, uint64_t>> tickets;
  uint64_t next_ticket = 0;  // the ticket of the next round appended
  ReplicationClock::time_point led_since{};
  bool handed_over = false;  // main has the entries: the broker serves
  // Followers this leader counts in its ISR ahead of etcd: an expansion
  // asked of the member thread and not yet seen in a new ISR.
  std::set<std::string> expanding;
};

namespace {

// Before the first tick: who the node is, nothing known about its group.
ClusterHealth Unknown(const ClusterNodeOptions& o) {
  ClusterHealth h;
  h.cluster = o.cluster;
  h.group = o.group;
  h.node = o.node;
  h.min_isr = o.min_isr;
  h.coordinator_error = "etcd not asked yet";
  return h;
}

}  // namespace

ClusterNode::ClusterNode(ClusterNodeOptions options)
    : options_(std::move(options)), health_(std::make_shared<HealthBoard>(Unknown(options_))) {}

Result<std::unique_ptr<ClusterNode>> ClusterNode::Start(ClusterNodeOptions options) {
  if (options.etcd_endpoints.empty()) return Status::InvalidArgument("--etcd: no URL given");
  if (options.min_isr < 1 || options.min_isr > options.peers.size() + 1) {
    return Status::InvalidArgument("--min-isr " + std::to_string(options.min_isr) +
                                   ": must be between 1 and the group's size (" +
                                   std::to_string(options.peers.size() + 1) + ")");
  }
  std::unique_ptr<ClusterNode> node(new ClusterNode(std::move(options)));
  {
    // Its own client: a slow etcd call for a placement never waits behind
    // (or holds up) the member thread's.
    EtcdOptions etcd;
    etcd.endpoints = node->options_.etcd_endpoints;
    auto coordinator = OpenEtcdCoordinator(etcd);
    if (!coordinator.ok()) return coordinator.status();
    node->placement_ = std::make_unique<PlacementThread>(
        std::move(coordinator.value()), node->options_.cluster,
        std::chrono::duration_cast<std::chrono::milliseconds>(node->options_.lease_ttl) / 3,
        [n = node.get()] { n->event_.Notify(); },
        GroupWeight{node->options_.group, node->options_.group_weight});
  }
  auto started = std::make_shared<std::promise<Status>>();
  auto result = started->get_future();
  node->thread_ = std::thread([n = node.get(), started] { n->Loop(started); });
  if (Status s = result.get(); !s.ok()) {
    node->thread_.join();
    return s;
  }
  return node;
}

ClusterNode::~ClusterNode() {
  {
    std::lock_guard<std::mutex> lock(mu_);  // so that no wait misses it
    stop_ = true;
  }
  leadership_cv_.notify_all();
  appended_cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

bool ClusterNode::WaitUntilLeading(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  leadership_cv_.wait_for(lock, timeout, [this] { return leadership_.has_value() || stop_; });
  if (!leadership_) return false;
  leadership_taken_ = true;
  return true;
}

Status ClusterNode::ReplayCommittedRounds(
    uint64_t after, const std::function<Status(std::string_view payload)>& apply) {
  uint64_t entries = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (leadership_) entries = std::exchange(*leadership_, 0);
  }
  if (after > entries) {
    return Status::Internal("the store holds " + std::to_string(after) +
                            " replicated entries, more than the " + std::to_string(entries) +
                            " committed before this node's epoch");
  }
  // Read from the files, not through the replication thread's log: the
  // entries before the epoch start are committed and never change. The
  // last ones are the log's cached tail, which this leader reads again to
  // catch its followers up: they stay cached.
  ReplicaLogReader reader(options_.log_dir, storage::FileSystem::Default(), after,
                          options_.cached_log_bytes);
  return reader.Read(entries, [&](const EntryView& e) { return apply(e.payload); });
}

PlacementLookup ClusterNode::LookupPlacement(const std::string& topic, uint32_t queue_count) {
  return placement_->Lookup(topic, queue_count);
}

std::optional<std::vector<std::string>> ClusterNode::DrainPending(
    const QueueGeneration& moved) const {
  auto map = placement_->map();
  auto it = map->drains.find(moved);
  if (it == map->drains.end()) return std::nullopt;
  return it->second;
}

std::vector<QueueGeneration> ClusterNode::MovedAway() const {
  auto map = placement_->map();
  std::lock_guard<std::mutex> lock(moved_away_mu_);
  if (map != moved_away_map_) {  // computed once per map read, not per call
    moved_away_.clear();
    for (const auto& [topic, p] : map->topics) {
      for (uint32_t q : p.QueuesDrainingFrom(options_.group)) {
        moved_away_.push_back({topic, q, p.GenerationOf(q)});
      }
    }
    moved_away_map_ = std::move(map);
  }
  return moved_away_;
}

std::string ClusterNode::LeaderUrlOf(const std::string& group) const {
  auto map = placement_->map();
  auto it = map->groups.find(group);
  return it == map->groups.end() ? "" : it->second.leader_url;
}

std::string ClusterNode::LeaderNodeOf(const std::string& group) const {
  auto map = placement_->map();
  auto it = map->groups.find(group);
  return it == map->groups.end() ? "" : it->second.state.leader;
}

std::vector<wire::GroupLeaderView> ClusterNode::Groups() const {
  auto map = placement_->map();
  std::vector<wire::GroupLeaderView> out;
  for (const auto& [group, route] : map->groups) {
    out.push_back(
        {group, route.state.leader, route.leader_url, route.state.epoch, route.node_urls});
  }
  return out;
}

std::string ClusterNode::leader_url() const {
  std::lock_guard<std::mutex> lock(mu_);
  return leader_url_;
}

std::optional<ClusterNode::Entry> ClusterNode::CommittedEntry(uint64_t ticket) const {
  std::lock_guard<std::mutex> lock(mu_);
  if (committed_entries_.empty() || ticket < committed_entries_.front().first) return std::nullopt;
  const uint64_t at = ticket - committed_entries_.front().first;  // tickets are consecutive
  if (at >= committed_entries_.size() || committed_entries_[at].first != ticket) {
    return std::nullopt;
  }
  return committed_entries_[at].second;
}

uint64_t ClusterNode::Replicate(std::string payload) {
  uint64_t ticket;
  {
    std::lock_guard<std::mutex> lock(mu_);
    to_append_.push_back(std::move(payload));
    ticket = ++next_ticket_;
  }
  round_waiting_.Notify();
  return ticket;
}

Status ClusterNode::WaitAppended(uint64_t ticket) {
  std::unique_lock<std::mutex> lock(mu_);
  auto done = [&] { return appended_ticket_ >= ticket || !failure_.ok() || stop_; };
  // As long as it takes: a replica log stalled (its disk, a frozen
  // process) stalls this round's store write as it stalls its ack, and
  // the broker goes on once it is back.
  for (int waited = 10; !appended_cv_.wait_for(lock, std::chrono::seconds(10), done);
       waited += 10) {
    Logger("cluster")->warn(
        "round {} is not in the replica log after {} s; the store waits for it (is the replica "
        "log's disk stalled?)",
        ticket, waited);
  }
  if (appended_ticket_ >= ticket) return Status::OK();
  if (!failure_.ok()) return failure_;
  return Status::Unavailable("replication stopped before round " + std::to_string(ticket) +
                             " was in the replica log");
}

Status ClusterNode::failure() const {
  std::lock_guard<std::mutex> lock(mu_);
  return failure_;
}

void ClusterNode::Loop(std::shared_ptr<std::promise<Status>> started) {
  SetThreadName("txmq-replica");
  auto log = Logger("cluster");
  Impl m;
  const auto tick_every =
      std::chrono::duration_cast<std::chrono::milliseconds>(options_.lease_ttl) / 3;
  {
    EtcdOptions etcd;
    etcd.endpoints = options_.etcd_endpoints;
    auto coordinator = OpenEtcdCoordinator(etcd);
    if (!coordinator.ok()) return started->set_value(coordinator.status());
    m.coordinator = std::move(coordinator.value());
    if (options_.segment_bytes != 0) {
      Status agreed = AgreeOnGroupConfig(*m.coordinator, options_.cluster, options_.group,
                                         {.segment_bytes = options_.segment_bytes});
      // A different segment size is refused at once; an etcd that cannot be
      // asked now only postpones the check to the next start, since a node
      // that waited for etcd here could not even be stopped.
      if (agreed.code() == StatusCode::kFailedPrecondition ||
          agreed.code() == StatusCode::kCorruption) {
        return started->set_value(agreed);
      }
      if (!agreed.ok()) {
        log->warn("cannot check --segment-mb against group {} now ({}); going on", options_.group,
                  agreed.ToString());
      }
    }
    auto replica_log = FileReplicaLog::Open(
        {.dir = options_.log_dir, .cached_tail_bytes = options_.cached_log_bytes});
    if (!replica_log.ok()) return started->set_value(replica_log.status());
    m.log = std::move(replica_log.value());
    GroupMemberOptions g;
    g.cluster = options_.cluster;
    g.group = options_.group;
    g.node = options_.node;
    g.listen_url = options_.client_url;
    g.lease_ttl = options_.lease_ttl;
    g.min_isr = options_.min_isr;
    g.highest_epoch_seen = m.log->highest_epoch();
    auto member = GroupMember::Open(*m.coordinator, g);
    if (!member.ok()) return started->set_value(member.status());
    // Clients asking a node that does not lead hear the leader's URL as
    // soon as the member reads it, not at the next tick of this thread.
    m.member = std::make_unique<MemberThread>(std::move(member.value()), tick_every,
                                              [this](const MemberView& view) {
                                                std::lock_guard<std::mutex> lock(mu_);
                                                leader_url_ = view.leader_url;
                                              });
    ZmqTransportOptions t;
    t.node = options_.node;
    t.bind = options_.replication_bind;
    t.peers = options_.peers;
    t.secret_key = options_.replication_secret_key;
    auto transport = ZmqReplicationTransport::Open(t);
    if (!transport.ok()) return started->set_value(transport.status());
    m.transport = std::move(transport.value());
    // The store kept beside the log starts empty at every start
    // (standby_store.h), so nothing is known committed yet: floor 0; the
    // leader's first request says how far.
    m.follower = std::make_unique<ReplicaFollower>(options_.node, *m.log, 0);
  }
  log->info("node {} of group {} (cluster {}): replication on {} ({}), log at index {} epoch {}",
            options_.node, options_.group, options_.cluster, m.transport->endpoint(),
            options_.replication_secret_key.empty() ? "plaintext" : "CURVE", m.log->last().index,
            m.log->highest_epoch());
  started->set_value(Status::OK());

  // Stops leading: before the broker serves, back to following; after,
  // for good (the broker's uncommitted rounds must never be served).
  auto lose = [&](const std::string& why) {
    if (!m.leader) return;
    m.leader->StepDown(Status::Unavailable(why));
    m.leader.reset();
    m.tickets.clear();
    log->warn("node {} stopped leading group {}: {}", options_.node, options_.group, why);
    std::lock_guard<std::mutex> lock(mu_);
    if (!leadership_taken_) leadership_.reset();
    m.handed_over = leadership_taken_;  // not taken yet: hand over again on a later win
    if (leadership_taken_ && failure_.ok()) {
      failure_ = Status::Unavailable("node " + options_.node + " stopped leading group " +
                                     options_.group + ": " + why);
      event_.Notify();
      appended_cv_.notify_all();
    }
  };
  std::vector<std::string> peer_names;
  for (const ZmqPeer& p : options_.peers) peer_names.push_back(p.name);
  auto next_tick = ReplicationClock::now();
  while (!stop_) {
    auto now = ReplicationClock::now();
    // What the member thread learnt from etcd, in order. Nothing here
    // waits for etcd: appends and answers go on while it is away.
    for (MemberEvent& e : m.member->TakeEvents()) {
      switch (e.kind) {
        case MemberEvent::Kind::kSteppedDown:
          lose(e.note);
          break;
        case MemberEvent::Kind::kBecameLeader: {
          if (!failure().ok()) break;
          ReplicationLeaderOptions lo;
          lo.node = options_.node;
          lo.followers = peer_names;
          lo.min_isr = options_.min_isr;
          auto leader = ReplicationLeader::Start(*m.log, lo, e.epoch, e.isr, 0, now);
          if (leader.ok()) {
            m.leader = std::move(leader.value());
            m.led_since = now;
            m.expanding.clear();
            log->info("node {} leads group {} in epoch {} (ISR {})", options_.node, options_.group,
                      m.leader->epoch(), e.isr.size());
          } else {
            // Holding the record without leading would stall the group: let
            // another member (or this one, in a higher epoch) run.
            log->error("node {} won epoch {} but cannot lead it: {}; leaving the election",
                       options_.node, e.epoch, leader.status().ToString());
            m.member->RequestLeave();
          }
          break;
        }
        case MemberEvent::Kind::kIsrChanged: {
          if (!m.leader || m.leader->epoch() != e.epoch) break;
          std::vector<std::string> isr = e.isr;
          for (const std::string& peer : m.expanding) {
            if (std::find(isr.begin(), isr.end(), peer) == isr.end()) isr.push_back(peer);
          }
          for (const std::string& peer : e.isr) m.expanding.erase(peer);
          m.leader->SetIsr(std::move(isr));
          break;
        }
      }
    }
    if (now >= next_tick) {
      const MemberView view = m.member->view();
      // ISR upkeep, after a grace of max_lag so live followers answer first.
      if (m.leader && now - m.led_since > options_.max_lag) {
        for (const std::string& lagging : m.leader->Lagging(now, options_.max_lag)) {
          m.expanding.erase(lagging);  // given up: the next ISR event drops it
          m.member->RequestShrink(lagging);
        }
      }
      // Expansions etcd has not confirmed yet are asked again.
      for (const std::string& peer : m.expanding) m.member->RequestExpand(peer);
      ClusterHealth health;
      health.cluster = options_.cluster;
      health.group = options_.group;
      health.node = options_.node;
      health.epoch = view.state.epoch;
      health.leading = m.leader != nullptr;
      health.isr = view.state.isr;
      health.min_isr = options_.min_isr;
      health.leader = view.state.leader;
      health.leader_url = view.leader_url;
      health.last_index = m.log->last().index;
      health.log_bytes = m.log->disk_bytes();
      health.commit_index = m.leader ? m.leader->commit_index() : 0;
      if (!m.leader) {
        health.follower_commit = m.follower->commit_index();
        health.store_applied = store_applied_.load(std::memory_order_relaxed);
      }
      // Published once a tick (TTL / 3): lag figures are that old at most.
      health.replicas = DescribeReplicas(options_.node, peer_names, view.state, health.last_index,
                                         m.leader.get(), now);
      if (!view.coordinator.ok()) health.coordinator_error = view.coordinator.ToString();
      {
        std::lock_guard<std::mutex> lock(mu_);
        leader_url_ = health.leader_url;
      }
      health_->Publish(std::move(health));
      next_tick = now + tick_every;
      now = ReplicationClock::now();
    }
    // Rounds the core handed over: appended here in one go, sent to the
    // followers, and only then fsynced, so that the leader's fsync and
    // the followers' (a round trip away) overlap. An entry counts towards
    // the commit index on the leader only once SyncLocal made it durable.
    // Drained on every pass, leading or not: rounds handed over after this
    // node stopped leading must not keep the wait below from waiting.
    round_waiting_.Drain();
    if (m.leader) {
      std::deque<std::string> rounds;
      {
        std::lock_guard<std::mutex> lock(mu_);
        rounds.swap(to_append_);
      }
      for (std::string& payload : rounds) {
        auto index = m.leader->Append(std::move(payload));
        if (!index.ok()) {
          lose("appending to the replica log: " + index.status().ToString());
          break;
        }
        m.tickets.emplace_back(++m.next_ticket, *index);
      }
      if (!rounds.empty()) {
        {
          std::lock_guard<std::mutex> lock(mu_);
          appended_ticket_ = m.next_ticket;
        }
        appended_cv_.notify_all();
      }
    }
    size_t moved = 0;
    if (m.leader) {
      for (Outgoing& out : m.leader->Poll(now)) {
        (void)m.transport->Send(out.to, std::move(out.frame));
        ++moved;
      }
    }
    // (Also the epoch-start entry, which Start appends unsynced.)
    if (m.leader && m.log->last().index != m.log->durable().index) {
      if (Status s = m.leader->SyncLocal(); !s.ok())
        lose("syncing the replica log: " + s.ToString());
    }
    while (auto frame = m.transport->Receive()) {
      ++moved;
      auto message = DecodeReplicationMessage(frame->bytes);
      if (!message.ok()) continue;
      if (std::holds_alternative<AppendAnswer>(message->body)) {
        if (m.leader) m.leader->OnAnswer(frame->peer, *message, now);
        continue;
      }
      // A request: answered by the follower's rules also while this node
      // leads (its epoch is then above any sender's: refused).
      (void)m.transport->Send(frame->peer, EncodeReplicationMessage(m.follower->Handle(*message)));
      follower_committed_.store(m.follower->commit_index(), std::memory_order_release);
    }
    if (m.leader && m.leader->superseded()) lose("a follower has seen a newer epoch");
    // A follower out of the ISR that holds every committed entry right now
    // (checked as answers arrive: under load it is level with the commit
    // index only for moments). The leader counts it at once, before etcd
    // has the new ISR, so no entry commits without it from here on: an
    // ISR that names it never lacks an acknowledged entry, whenever the
    // member thread's write lands (Kafka's KIP-497 does the same).
    if (m.leader) {
      for (const std::string& peer : peer_names) {
        const auto& isr = m.leader->isr();
        if (std::find(isr.begin(), isr.end(), peer) != isr.end()) continue;
        if (!m.leader->HoldsCommitted(peer)) continue;
        std::vector<std::string> counted = isr;
        counted.push_back(peer);
        m.leader->SetIsr(std::move(counted));
        m.expanding.insert(peer);
        m.member->RequestExpand(peer);
      }
    }
    if (m.leader) {
      const uint64_t commit = m.leader->commit_index();
      uint64_t done = 0;
      std::vector<std::pair<uint64_t, Entry>> entries;
      while (!m.tickets.empty() && m.tickets.front().second <= commit) {
        done = m.tickets.front().first;
        const uint64_t index = m.tickets.front().second;
        entries.push_back({done, {index, m.log->CrcAt(index).value_or(0)}});
        m.tickets.pop_front();
      }
      if (!entries.empty()) {
        std::lock_guard<std::mutex> lock(mu_);
        for (const auto& e : entries) committed_entries_.push_back(e);
        while (committed_entries_.size() > kCommittedKept) committed_entries_.pop_front();
      }
      if (done != 0) {
        committed_.store(done, std::memory_order_release);
        event_.Notify();
      }
      if (!m.handed_over && commit >= m.leader->epoch_start()) {
        m.handed_over = true;
        log->info("node {} serves group {}: epoch {} committed from index {}", options_.node,
                  options_.group, m.leader->epoch(), m.leader->epoch_start());
        std::lock_guard<std::mutex> lock(mu_);
        leadership_ = m.leader->epoch_start() - 1;
        leadership_cv_.notify_all();
      }
    }
    if (moved == 0) m.transport->Wait(m.leader ? 1ms : 20ms, round_waiting_.fd());
  }
  if (m.leader) m.leader->StepDown(Status::Unavailable("node stopping"));
  m.member.reset();  // leaves the group: the lease is revoked
}

}  // namespace txmq::cluster
