#include "broker/src/cluster/replication_leader.h"

#include <algorithm>
#include <tuple>

namespace txmq::cluster {

Result<std::unique_ptr<ReplicationLeader>> ReplicationLeader::Start(
    ReplicaLog& log, ReplicationLeaderOptions options, int64_t epoch, std::vector<std::string> isr,
    uint64_t commit_floor, ReplicationClock::time_point now) {
  const auto& starts = log.epochs().starts();
  if (epoch < log.highest_epoch() || (!starts.empty() && starts.rbegin()->first >= epoch)) {
    return Status::Aborted("cannot lead epoch " + std::to_string(epoch) + ": the log has seen " +
                           std::to_string(log.highest_epoch()));
  }
  if (options.max_batch_entries == 0) {
    return Status::InvalidArgument("ReplicationLeaderOptions.max_batch_entries 0: at least 1");
  }
  if (Status s = log.RaiseEpoch(epoch); !s.ok()) return s;
  auto leader = std::unique_ptr<ReplicationLeader>(new ReplicationLeader(log, options, epoch));
  // The epoch-start entry: the first of this epoch. Nothing commits before
  // it does (AdvanceCommit), so serving waits for it.
  auto start = leader->Append("");
  if (!start.ok()) return start.status();
  leader->epoch_start_ = *start;
  leader->commit_ = std::min(commit_floor, log.last().index);
  leader->isr_ = std::move(isr);
  for (const std::string& node : options.followers) {
    FollowerProgress& p = leader->followers_[node];
    p.next = leader->epoch_start_;  // optimistic: the first append finds out
    p.caught_up_at = now;
  }
  return leader;
}

ReplicationLeader::ReplicationLeader(ReplicaLog& log, ReplicationLeaderOptions options,
                                     int64_t epoch)
    : log_(log), options_(std::move(options)), epoch_(epoch) {}

ReplicationLeader::~ReplicationLeader() {
  if (!waiting_.empty()) StepDown(Status::Unavailable("the replication leader was destroyed"));
}

Result<uint64_t> ReplicationLeader::Append(std::string payload) {
  if (stepped_down_) {
    return Status::FailedPrecondition("no longer the leader of epoch " + std::to_string(epoch_));
  }
  const EntryRef last = log_.last();
  ReplicaEntry e{last.index + 1, epoch_, ChainCrc(last.crc, epoch_, last.index + 1, payload),
                 std::move(payload)};
  if (Status s = log_.Append(e); !s.ok()) return s;
  return e.index;
}

Status ReplicationLeader::SyncLocal() {
  if (Status s = log_.Sync(); !s.ok()) return s;
  AdvanceCommit();
  return Status::OK();
}

void ReplicationLeader::WhenCommitted(uint64_t index, Completion done) {
  if (stepped_down_) {
    done(Status::Unavailable("no longer the leader of epoch " + std::to_string(epoch_)));
  } else if (index <= commit_) {
    done(Status::OK());
  } else {
    waiting_.emplace(index, std::move(done));
  }
}

std::pair<uint64_t, SharedFrame> ReplicationLeader::EncodeAppendFrom(
    const FollowerProgress& p, std::map<uint64_t, std::pair<uint64_t, SharedFrame>>& built) {
  auto it = built.find(p.next);
  if (it != built.end()) return it->second;
  AppendRequest head;
  head.epoch = epoch_;
  head.leader = options_.node;
  head.prev = {p.next - 1, *log_.CrcAt(p.next - 1)};
  head.leader_commit = commit_;
  // Payloads in place in the log: the frame is the only copy.
  std::vector<EntryView> entries;
  size_t bytes = 0;
  for (uint64_t i = p.next; i <= log_.last().index; ++i) {
    if (entries.size() >= options_.max_batch_entries) break;
    auto e = log_.View(i);
    if (!e.ok()) break;  // the log is this leader's own: cannot happen
    if (!entries.empty() && bytes + e->payload.size() > options_.max_batch_bytes) break;
    bytes += e->payload.size();
    entries.push_back(*e);
  }
  const uint64_t id = next_request_id_++;
  auto frame = std::make_shared<const std::string>(EncodeAppend(id, head, entries));
  return built[p.next] = {id, std::move(frame)};
}

std::vector<Outgoing> ReplicationLeader::Poll(ReplicationClock::time_point now) {
  std::vector<Outgoing> out;
  if (stepped_down_) return out;
  std::map<uint64_t, std::pair<uint64_t, SharedFrame>> built;
  for (auto& [node, p] : followers_) {
    const bool waiting = p.inflight_id != 0 && now - p.sent_at < options_.resend_after;
    if (waiting) continue;
    const bool resend = p.inflight_id != 0;
    const bool behind = p.next <= log_.last().index || p.sent_commit < commit_;
    const bool idle_too_long = now - p.sent_at >= options_.heartbeat_every;
    if (!p.truncate && !behind && !resend && !idle_too_long) continue;
    SharedFrame frame;
    if (p.truncate) {
      p.truncate->leader_commit = commit_;
      p.inflight_id = next_request_id_++;
      frame = std::make_shared<const std::string>(
          EncodeReplicationMessage({p.inflight_id, *p.truncate}));
    } else {
      std::tie(p.inflight_id, frame) = EncodeAppendFrom(p, built);
    }
    p.sent_at = now;
    p.sent_up_to = log_.last().index;
    p.sent_commit = commit_;
    out.push_back({node, std::move(frame)});
  }
  return out;
}

void ReplicationLeader::OnAnswer(const std::string& from, const ReplicationMessage& message,
                                 ReplicationClock::time_point now) {
  auto it = followers_.find(from);
  const auto* a = std::get_if<AppendAnswer>(&message.body);
  if (it == followers_.end() || a == nullptr || stepped_down_) return;
  FollowerProgress& p = it->second;
  p.answered_at = now;
  if (a->epoch > epoch_) {
    // A follower saw a newer epoch: this node is a zombie leader.
    superseded_ = true;
    StepDown(Status::Unavailable(from + " has seen epoch " + std::to_string(a->epoch) +
                                 ", above this leader's " + std::to_string(epoch_)));
    return;
  }
  // Only the answer to the request in flight counts; older ones were
  // resent or overtaken.
  if (message.request_id != p.inflight_id) return;
  switch (a->outcome) {
    case Outcome::kOk:
      p.inflight_id = 0;
      OnOk(p, *a);
      break;
    case Outcome::kGap:
      p.inflight_id = 0;
      p.truncate.reset();
      p.next = std::min(p.next, a->last_durable.index + 1);
      break;
    case Outcome::kDivergent:
      p.inflight_id = 0;
      OnDivergent(p, *a);
      break;
    case Outcome::kStaleEpoch:  // with a->epoch <= epoch_: a confused follower
    case Outcome::kFailed:
      // Left in flight: sent again after resend_after.
      break;
  }
}

void ReplicationLeader::OnOk(FollowerProgress& p, const AppendAnswer& a) {
  const EntryRef got = a.last_durable;
  if (got.index > log_.last().index || log_.CrcAt(got.index) != got.crc) {
    return;  // not this leader's log: the next append finds out where
  }
  p.truncate.reset();
  p.match = std::max(p.match, got.index);
  p.next = got.index + 1;
  if (got.index >= p.sent_up_to) p.caught_up_at = p.sent_at;
  AdvanceCommit();
}

void ReplicationLeader::OnDivergent(FollowerProgress& p, const AppendAnswer& a) {
  // Kafka's leader-epoch rule on the epoch tables: the follower's entries
  // of epoch F agree with this log up to where this log's epoch F (or the
  // largest epoch below it that it has) ends; if this log never had F,
  // none of the follower's F entries survive. A keep point the follower
  // does not share is answered with another divergence, lower down.
  const EpochTable& mine = log_.epochs();
  const int64_t f = a.divergent_epoch;
  const auto floor = mine.FloorEpoch(f);
  uint64_t keep = 0;
  if (f > 0 && floor) {
    keep = std::min(mine.EndOf(*floor, log_.last().index), a.epoch_end.index);
    if (*floor < f) keep = std::min(keep, a.epoch_start > 0 ? a.epoch_start - 1 : 0);
  }
  keep = std::min(keep, log_.last().index);
  p.truncate = TruncateRequest{epoch_, options_.node, {keep, *log_.CrcAt(keep)}, commit_};
  p.next = keep + 1;
}

void ReplicationLeader::AdvanceCommit() {
  if (stepped_down_ || isr_.size() < options_.min_isr) return;
  if (std::find(isr_.begin(), isr_.end(), options_.node) == isr_.end()) return;
  uint64_t c = log_.durable().index;
  for (const std::string& node : isr_) {
    if (node == options_.node) continue;
    auto it = followers_.find(node);
    if (it == followers_.end()) return;  // a member this leader cannot count
    c = std::min(c, it->second.match);
  }
  if (c < epoch_start_ || c <= commit_) return;
  commit_ = c;
  std::vector<Completion> ready;
  while (!waiting_.empty() && waiting_.begin()->first <= commit_) {
    ready.push_back(std::move(waiting_.begin()->second));
    waiting_.erase(waiting_.begin());
  }
  for (Completion& done : ready) done(Status::OK());
}

void ReplicationLeader::SetIsr(std::vector<std::string> isr) {
  isr_ = std::move(isr);
  AdvanceCommit();  // a shrink may let it move
}

void ReplicationLeader::StepDown(const Status& why) {
  stepped_down_ = true;
  std::multimap<uint64_t, Completion> failed;
  failed.swap(waiting_);
  for (auto& [index, done] : failed) done(why);
}

const FollowerProgress* ReplicationLeader::progress(const std::string& node) const {
  auto it = followers_.find(node);
  return it == followers_.end() ? nullptr : &it->second;
}

std::vector<std::string> ReplicationLeader::Lagging(ReplicationClock::time_point now,
                                                    std::chrono::milliseconds max_lag) const {
  std::vector<std::string> out;
  for (const std::string& node : isr_) {
    auto it = followers_.find(node);
    if (it == followers_.end()) continue;
    // Holding everything now is caught up, however long ago it answered.
    const FollowerProgress& p = it->second;
    if (p.match < log_.last().index && now - p.caught_up_at > max_lag) out.push_back(node);
  }
  return out;
}

bool ReplicationLeader::HoldsCommitted(const std::string& node) const {
  auto it = followers_.find(node);
  return it != followers_.end() && it->second.match >= commit_ && it->second.match >= epoch_start_;
}

std::vector<ReplicaLag> ReplicationLeader::Replicas(ReplicationClock::time_point now) const {
  std::vector<ReplicaLag> out;
  const uint64_t last = log_.last().index;
  for (const auto& [node, p] : followers_) {
    ReplicaLag r;
    r.node = node;
    r.in_isr = std::find(isr_.begin(), isr_.end(), node) != isr_.end();
    r.match = p.match;
    r.lag = last > p.match ? last - p.match : 0;
    if (p.answered_at) r.since_answer = now - *p.answered_at;
    out.push_back(std::move(r));
  }
  return out;
}

}  // namespace txmq::cluster
