#include "broker/src/cluster/group_member.h"

#include <algorithm>
#include <utility>

namespace txmq::cluster {
namespace {

Status CheckName(const std::string& value, const char* field) {
  if (value.empty() || value.find('/') != std::string::npos) {
    return Status::InvalidArgument(std::string("GroupMemberOptions.") + field + " '" + value +
                                   "': must be non-empty and without '/'");
  }
  return Status::OK();
}

}  // namespace

Result<std::unique_ptr<GroupMember>> GroupMember::Open(Coordinator& coordinator,
                                                       GroupMemberOptions options) {
  for (auto [value, field] :
       {std::pair{&options.cluster, "cluster"}, std::pair{&options.group, "group"},
        std::pair{&options.node, "node"}}) {
    if (Status s = CheckName(*value, field); !s.ok()) return s;
  }
  if (options.lease_ttl < std::chrono::seconds(1)) {
    return Status::InvalidArgument("GroupMemberOptions.lease_ttl " +
                                   std::to_string(options.lease_ttl.count()) +
                                   " s: must be at least 1 s");
  }
  if (options.min_isr < 1) {
    return Status::InvalidArgument("GroupMemberOptions.min_isr 0: must be at least 1");
  }
  if (options.highest_epoch_seen < 0) {
    return Status::InvalidArgument("GroupMemberOptions.highest_epoch_seen " +
                                   std::to_string(options.highest_epoch_seen) +
                                   ": must not be negative");
  }
  return std::unique_ptr<GroupMember>(new GroupMember(coordinator, std::move(options)));
}

GroupMember::GroupMember(Coordinator& coordinator, GroupMemberOptions options)
    : coordinator_(coordinator),
      options_(std::move(options)),
      state_key_(GroupStateKey(options_.cluster, options_.group)),
      lease_(coordinator, BrokerKey(options_.cluster, options_.node),
             EncodeNodeRegistration({options_.listen_url, options_.group}), options_.lease_ttl),
      highest_epoch_(options_.highest_epoch_seen) {}

std::string GroupMember::BrokerKeyOf(const std::string& node) const {
  return BrokerKey(options_.cluster, node);
}

bool GroupMember::IsLeader(Clock::time_point now) const {
  return leading_ && lease_.id() == leading_lease_ && lease_.Held(now);
}

bool GroupMember::CanAck(Clock::time_point now) const {
  return IsLeader(now) && view_.isr.size() >= options_.min_isr;
}

bool GroupMember::StepDown() {
  const bool was = leading_;
  leading_ = false;
  leading_lease_ = 0;
  return was;
}

TickReport GroupMember::Tick(Clock::time_point now) {
  TickReport report;
  const bool led = leading_;
  // Liveness first: without a live registration this node may not run, and
  // a leader whose lease ended may already be replaced.
  report.coordinator = lease_.Tick(now);
  if (leading_ && lease_.id() != leading_lease_) {
    StepDown();
    report.note = "its lease ended (others may have elected a new leader)";
  }
  if (report.coordinator.ok()) {
    auto read = coordinator_.Get(state_key_);
    if (!read.ok()) {
      report.coordinator = read.status();
    } else if (read->kvs.empty()) {
      // txmq never deletes the record; gone means a fresh group (or an
      // operator reset it, which the epoch floor survives).
      if (StepDown()) report.note = "the group record is gone";
      view_ = GroupState{};
      view_revision_ = 0;
      leader_url_.clear();
      TryCreate(now, report);
    } else {
      const KeyValue& kv = read->kvs.front();
      auto state = DecodeGroupState(kv.value);
      if (!state.ok()) {
        // A record nobody can read proves nothing; only a leader's claim
        // depends on it.
        if (StepDown()) report.note = state.status().message();
        report.coordinator = state.status();
      } else {
        highest_epoch_ = std::max(highest_epoch_, state->epoch);
        if (leading_ && kv.mod_revision != view_revision_) {
          // Only the leader of an epoch writes its record; a write this
          // node did not make is a new election (or an unknown outcome).
          StepDown();
          report.note = state->epoch > view_.epoch
                            ? "epoch " + std::to_string(state->epoch) + " elected " + state->leader
                            : "the group record changed under it";
        }
        if (state->leader != view_.leader) leader_url_.clear();
        view_ = std::move(*state);
        view_revision_ = kv.mod_revision;
        if (!leading_) TryElect(now, report);
      }
    }
  }
  report.stepped_down = led && !leading_;
  if (report.became_leader) report.stepped_down = led;
  return report;
}

void GroupMember::TryCreate(Clock::time_point now, TickReport& report) {
  if (!lease_.Registered(now)) return;
  GroupState first{highest_epoch_ + 1, options_.node, {options_.node}};
  WinIfCommitted(
      first,
      {Compare::Absent(state_key_), Compare::ModRevisionIs(lease_.key(), lease_.key_revision())},
      report);
}

void GroupMember::TryElect(Clock::time_point now, TickReport& report) {
  const std::string& old = view_.leader;
  if (old == options_.node) {
    leader_url_ = options_.listen_url;
  } else if (!old.empty()) {
    auto seen = coordinator_.Get(BrokerKeyOf(old));
    if (!seen.ok()) {
      report.coordinator = seen.status();
      return;
    }
    if (!seen->kvs.empty()) {
      auto reg = DecodeNodeRegistration(seen->kvs.front().value);
      if (reg.ok()) leader_url_ = reg->url;
      return;  // the leader is alive
    }
    leader_url_.clear();
  }
  if (!view_.InIsr(options_.node)) {
    // No unclean election: only a member holds every acknowledged entry.
    report.note = "not in the ISR of epoch " + std::to_string(view_.epoch) + ": cannot lead";
    return;
  }
  if (!lease_.Registered(now)) return;
  std::vector<Compare> compares{Compare::ModRevisionIs(state_key_, view_revision_),
                                Compare::ModRevisionIs(lease_.key(), lease_.key_revision())};
  // A leader that came back between the read and the write keeps its group.
  // A previous incarnation of this node (leader == node: it restarted or
  // lost its lease) is replaced by this one, with a new epoch like any other.
  if (!old.empty() && old != options_.node) compares.push_back(Compare::Absent(BrokerKeyOf(old)));
  GroupState next = view_;
  next.epoch = std::max(view_.epoch, highest_epoch_) + 1;
  next.leader = options_.node;
  // The gone leader leaves the ISR in the same step: the compare above
  // makes "its key is absent" part of this write, and a shrink is always
  // safe (every remaining member still holds every committed entry). Left
  // in, it would hold back the new epoch's first commit until the leader
  // shrank it for lag, a few seconds more of failover. When it comes back
  // it catches up and is taken in again like any follower.
  if (!old.empty() && old != options_.node && next.InIsr(old)) {
    next.isr.erase(std::find(next.isr.begin(), next.isr.end(), old));
  }
  WinIfCommitted(next, std::move(compares), report);
}

void GroupMember::WinIfCommitted(const GroupState& next, std::vector<Compare> compares,
                                 TickReport& report) {
  Txn txn;
  txn.compares = std::move(compares);
  txn.on_success.push_back(WriteOp::Put(state_key_, EncodeGroupState(next)));
  auto done = coordinator_.Commit(txn);
  if (!done.ok()) {
    // On kTimeout the write may have happened; the next Tick reads a record
    // naming this node and runs again with the epoch after it.
    report.coordinator = done.status();
    return;
  }
  if (!done->succeeded) {
    // Someone else wrote first, or this node's key is not what it wrote
    // (deleted under a live lease): register again, read again next Tick.
    lease_.RegisterAgain();
    return;
  }
  leading_ = true;
  leading_lease_ = lease_.id();
  view_ = next;
  view_revision_ = done->revision;
  highest_epoch_ = next.epoch;
  leader_url_ = options_.listen_url;
  report.became_leader = true;
}

Status GroupMember::ShrinkIsr(const std::string& node, Clock::time_point now) {
  if (node == options_.node) {
    return Status::InvalidArgument("ShrinkIsr " + node + ": the ISR always holds its leader");
  }
  if (!IsLeader(now)) {
    return Status::FailedPrecondition("ShrinkIsr " + node + ": " + options_.node +
                                      " is not the leader of group " + options_.group);
  }
  if (!view_.InIsr(node)) return Status::OK();
  GroupState next = view_;
  next.isr.erase(std::find(next.isr.begin(), next.isr.end(), node));
  return ChangeIsr(next);
}

Status GroupMember::ExpandIsr(const std::string& node, Clock::time_point now) {
  if (Status s = CheckName(node, "node (ExpandIsr)"); !s.ok()) return s;
  if (!IsLeader(now)) {
    return Status::FailedPrecondition("ExpandIsr " + node + ": " + options_.node +
                                      " is not the leader of group " + options_.group);
  }
  if (view_.InIsr(node)) return Status::OK();
  GroupState next = view_;
  next.isr.push_back(node);
  return ChangeIsr(next);
}

Status GroupMember::ChangeIsr(const GroupState& next) {
  // The record's mod revision fences it all: any election or ISR change
  // since this node's last write moved it, so leader == this node and the
  // epoch are still what view_ says exactly when the compare holds. The
  // node's own key fences a leader whose lease ended unnoticed.
  Txn txn;
  txn.compares = {Compare::ModRevisionIs(state_key_, view_revision_),
                  Compare::ModRevisionIs(lease_.key(), lease_.key_revision())};
  txn.on_success.push_back(WriteOp::Put(state_key_, EncodeGroupState(next)));
  auto done = coordinator_.Commit(txn);
  if (!done.ok()) {
    // kUnavailable: nothing was sent. Otherwise the outcome is unknown and
    // an ISR this node cannot name must not be acknowledged against.
    if (done.status().code() != StatusCode::kUnavailable) StepDown();
    return done.status();
  }
  if (!done->succeeded) {
    StepDown();
    lease_.RegisterAgain();
    return Status::Aborted("group " + options_.group + " changed since epoch " +
                           std::to_string(view_.epoch) + " was read: " + options_.node +
                           " stepped down");
  }
  view_ = next;
  view_revision_ = done->revision;
  return Status::OK();
}

Status GroupMember::Leave() {
  StepDown();
  return lease_.Revoke();
}

}  // namespace txmq::cluster
