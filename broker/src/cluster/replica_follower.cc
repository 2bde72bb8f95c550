#include "broker/src/cluster/replica_follower.h"

#include <algorithm>

namespace txmq::cluster {

AppendAnswer ReplicaFollower::Answer(Outcome outcome, std::string reason) const {
  AppendAnswer a;
  a.epoch = log_.highest_epoch();
  a.node = node_;
  a.outcome = outcome;
  a.last_durable = log_.durable();
  a.reason = std::move(reason);
  return a;
}

bool ReplicaFollower::AcceptEpoch(int64_t epoch, const std::string& leader, AppendAnswer& answer) {
  if (epoch < log_.highest_epoch()) {
    answer = Answer(Outcome::kStaleEpoch, "epoch " + std::to_string(epoch) + " of " + leader +
                                              " is below " + std::to_string(log_.highest_epoch()));
    return false;
  }
  if (epoch == leader_epoch_ && leader != leader_) {
    // The election makes one leader per epoch; two claimants mean a bug or
    // a reset record. Follow neither blindly.
    answer = Answer(Outcome::kFailed, leader + " claims epoch " + std::to_string(epoch) +
                                          ", which " + leader_ + " leads");
    return false;
  }
  // Durable before acting: a restart must still refuse the old leader.
  if (Status s = log_.RaiseEpoch(epoch); !s.ok()) {
    answer =
        Answer(Outcome::kFailed, "persisting epoch " + std::to_string(epoch) + ": " + s.message());
    return false;
  }
  leader_ = leader;
  leader_epoch_ = epoch;
  return true;
}

void ReplicaFollower::Divergent(uint64_t index, AppendAnswer& answer) const {
  const EpochTable& epochs = log_.epochs();
  const int64_t epoch = epochs.EpochAt(index);
  answer = Answer(Outcome::kDivergent, "entry " + std::to_string(index) + " of epoch " +
                                           std::to_string(epoch) + " differs from the leader's");
  answer.divergent_epoch = epoch;
  answer.epoch_start = epoch == 0 ? 0 : epochs.StartOf(epoch);
  const uint64_t end = epoch == 0 ? 0 : epochs.EndOf(epoch, log_.last().index);
  answer.epoch_end = {end, *log_.CrcAt(end)};
}

AppendAnswer ReplicaFollower::HandleAppend(const AppendRequest& request) {
  AppendAnswer answer;
  if (!AcceptEpoch(request.epoch, request.leader, answer)) return answer;
  if (request.prev.index > log_.last().index) {
    return Answer(Outcome::kGap, "no entry " + std::to_string(request.prev.index) +
                                     ": the log ends at " + std::to_string(log_.last().index));
  }
  if (log_.CrcAt(request.prev.index) != request.prev.crc) {
    Divergent(request.prev.index, answer);
    return answer;
  }
  uint64_t expected = request.prev.index + 1;
  for (const ReplicaEntry& e : request.entries) {
    if (e.index != expected || e.epoch > request.epoch) {
      return Answer(Outcome::kFailed,
                    "malformed append: entry " + std::to_string(e.index) + " of epoch " +
                        std::to_string(e.epoch) + " where entry " + std::to_string(expected) +
                        " of epoch <= " + std::to_string(request.epoch) + " belongs");
    }
    ++expected;
    if (e.index <= log_.last().index) {
      // Already here (a resend): same crc, same entry. Otherwise this log
      // holds an entry of an older leader the current one never had.
      if (log_.CrcAt(e.index) == e.crc) continue;
      Divergent(e.index, answer);
      return answer;
    }
    if (Status s = log_.Append(e); !s.ok()) {
      return Answer(Outcome::kFailed,
                    "appending entry " + std::to_string(e.index) + ": " + s.message());
    }
  }
  // Before the answer: what it names must survive a power loss.
  if (Status s = log_.Sync(); !s.ok()) return Answer(Outcome::kFailed, "sync: " + s.message());
  const uint64_t matched = expected - 1;
  commit_ = std::max(commit_, std::min(request.leader_commit, matched));
  answer = Answer(Outcome::kOk);
  answer.last_durable = {matched, *log_.CrcAt(matched)};
  return answer;
}

AppendAnswer ReplicaFollower::HandleTruncate(const TruncateRequest& request) {
  AppendAnswer answer;
  if (!AcceptEpoch(request.epoch, request.leader, answer)) return answer;
  const uint64_t keep = request.keep.index;
  if (keep < commit_) {
    // The leader holds every committed entry, so it never asks this; if it
    // does, refusing keeps what may already be applied.
    return Answer(Outcome::kFailed, "truncation after " + std::to_string(keep) +
                                        " would drop committed entries up to " +
                                        std::to_string(commit_));
  }
  if (keep > log_.last().index) {
    return Answer(Outcome::kGap, "no entry " + std::to_string(keep) + ": the log ends at " +
                                     std::to_string(log_.last().index));
  }
  if (log_.CrcAt(keep) != request.keep.crc) {
    Divergent(keep, answer);
    return answer;
  }
  if (Status s = log_.TruncateAfter(keep); !s.ok()) {
    return Answer(Outcome::kFailed,
                  "truncating after " + std::to_string(keep) + ": " + s.message());
  }
  if (Status s = log_.Sync(); !s.ok()) return Answer(Outcome::kFailed, "sync: " + s.message());
  commit_ = std::max(commit_, std::min(request.leader_commit, keep));
  answer = Answer(Outcome::kOk);
  answer.last_durable = request.keep;
  return answer;
}

ReplicationMessage ReplicaFollower::Handle(const ReplicationMessage& message) {
  ReplicationMessage reply;
  reply.request_id = message.request_id;
  if (const auto* a = std::get_if<AppendRequest>(&message.body)) {
    reply.body = HandleAppend(*a);
  } else if (const auto* t = std::get_if<TruncateRequest>(&message.body)) {
    reply.body = HandleTruncate(*t);
  } else {
    reply.body = Answer(Outcome::kFailed, "a follower answers requests, not answers");
  }
  return reply;
}

}  // namespace txmq::cluster
