// The leader side of replication: per-follower progress, the commit
// index, and acknowledgements released only up to it.
//
// The owner (the replication thread, when wired into txmqd) drives it:
//   Start(...)        on GroupMember::Tick's became_leader: raises the log's
//                     epoch and appends the epoch-start entry
//   Append(payload)   one write round; SyncLocal() after a group of them
//   WhenCommitted(i)  runs a completion once entry i is committed (acks)
//   Poll(now)         the requests to send now (encoded), one in flight per
//                     follower
//   OnAnswer(...)     each follower's answer
//   Replicas(now)     each follower's progress, for operators
//   SetIsr(...)       after GroupMember changed the ISR
//   StepDown(why)     on stepped_down, or when superseded() turns true
//
// The commit rule: commit_index = min over the ISR of the index each member
// has fsynced (the leader's log.durable(), a follower's match from its ok
// answers), provided |ISR| >= min_isr, the ISR has only nodes this leader
// replicates to, and the result reaches the epoch-start entry (entries of
// earlier epochs commit with it, never by counting alone: the leader knows
// its own epoch's log is the one the ISR shares). It never regresses. Only
// entries up to commit_index may be applied to the broker store or
// acknowledged.
//
// Thread safety: none; the replication thread owns it and its log.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "broker/src/cluster/replica_log.h"
#include "broker/src/cluster/replication_messages.h"

namespace txmq::cluster {

using ReplicationClock = std::chrono::steady_clock;

struct ReplicationLeaderOptions {
  std::string node;
  // Every other replica of the group (ISR or not): each is sent the log.
  std::vector<std::string> followers;
  // The ISR size below which nothing commits (GroupMemberOptions.min_isr).
  size_t min_isr = 1;
  // Bounds of one append: entries and payload bytes (at least one entry).
  size_t max_batch_entries = 256;
  size_t max_batch_bytes = 4u << 20;
  // A request not answered within this is sent again.
  std::chrono::milliseconds resend_after{500};
  // An idle follower gets an empty append this often (it learns the
  // commit index and the leader shows it is alive).
  std::chrono::milliseconds heartbeat_every{200};
};

// A request for one follower, encoded (replication_messages.h): followers
// sent the same append share one frame.
struct Outgoing {
  std::string to;
  SharedFrame frame;
};

struct FollowerProgress {
  uint64_t next = 1;                        // the first index to send
  uint64_t match = 0;                       // the highest index known identical and fsynced there
  std::optional<TruncateRequest> truncate;  // to send before any append
  uint64_t inflight_id = 0;                 // 0: none
  ReplicationClock::time_point sent_at{};
  uint64_t sent_up_to = 0;  // the leader's last index when it was sent
  uint64_t sent_commit = 0;
  ReplicationClock::time_point caught_up_at{};  // last answer that held all then sent
  // Any answer at all, counted or not: a follower that answers but cannot
  // keep up is a different problem from one that is gone.
  std::optional<ReplicationClock::time_point> answered_at;
};

// One follower as this leader sees it, for txmqctl cluster status and
// /metrics: how far behind it is and whether it still talks.
struct ReplicaLag {
  std::string node;
  bool in_isr = false;
  uint64_t match = 0;  // its highest entry known identical to this log's and fsynced
  uint64_t lag = 0;    // this log's last index - match
  // Since its last answer of any kind; nullopt: none in this epoch.
  std::optional<ReplicationClock::duration> since_answer;
};

class ReplicationLeader {
 public:
  using Completion = std::function<void(const Status&)>;

  // Leads `epoch` on `log` (which must outlive the leader): kAborted when
  // the log has seen a higher epoch (someone newer leads). Appends the
  // epoch-start entry (an empty payload: the store never writes an empty
  // round, so it is recognisable) without syncing it. `isr` includes this
  // node. `commit_floor`: an index known committed (the store's applied
  // index); the commit index starts there.
  static Result<std::unique_ptr<ReplicationLeader>> Start(
      ReplicaLog& log, ReplicationLeaderOptions options, int64_t epoch,
      std::vector<std::string> isr, uint64_t commit_floor, ReplicationClock::time_point now);
  ReplicationLeader(const ReplicationLeader&) = delete;
  ReplicationLeader& operator=(const ReplicationLeader&) = delete;
  ~ReplicationLeader();

  // Appends one round in this epoch; returns its index. Not durable (nor
  // counted) until SyncLocal. kFailedPrecondition after StepDown.
  Result<uint64_t> Append(std::string payload);
  Status SyncLocal();
  // Runs `done` with OK once `index` is committed, or with kUnavailable
  // when this leader steps down first (the entry may still commit under
  // the next leader: the client retries with the same message id).
  void WhenCommitted(uint64_t index, Completion done);

  std::vector<Outgoing> Poll(ReplicationClock::time_point now);
  void OnAnswer(const std::string& from, const ReplicationMessage& message,
                ReplicationClock::time_point now);
  void SetIsr(std::vector<std::string> isr);
  const std::vector<std::string>& isr() const { return isr_; }
  void StepDown(const Status& why);

  int64_t epoch() const { return epoch_; }
  uint64_t epoch_start() const { return epoch_start_; }
  uint64_t commit_index() const { return commit_; }
  // An answer carried a higher epoch: another leader exists. The owner
  // steps down (and tells GroupMember nothing: its next Tick finds out).
  bool superseded() const { return superseded_; }
  bool stepped_down() const { return stepped_down_; }
  const FollowerProgress* progress(const std::string& node) const;
  // ISR followers that lack entries and have not held every entry the
  // leader had for `max_lag` (Kafka's replica.lag.time.max): ShrinkIsr
  // candidates.
  std::vector<std::string> Lagging(ReplicationClock::time_point now,
                                   std::chrono::milliseconds max_lag) const;
  // A follower that holds every committed entry: may be ExpandIsr'ed.
  bool HoldsCommitted(const std::string& node) const;
  // Every follower (ISR or not), by name.
  std::vector<ReplicaLag> Replicas(ReplicationClock::time_point now) const;

 private:
  ReplicationLeader(ReplicaLog& log, ReplicationLeaderOptions options, int64_t epoch);
  void OnOk(FollowerProgress& p, const AppendAnswer& a);
  void OnDivergent(FollowerProgress& p, const AppendAnswer& a);
  // The append that brings `p` up from p.next, encoded once per Poll for
  // every follower at that point (`built`: by p.next, the frame and its
  // request id).
  std::pair<uint64_t, SharedFrame> EncodeAppendFrom(
      const FollowerProgress& p, std::map<uint64_t, std::pair<uint64_t, SharedFrame>>& built);
  void AdvanceCommit();

  ReplicaLog& log_;
  const ReplicationLeaderOptions options_;
  const int64_t epoch_;
  uint64_t epoch_start_ = 0;
  uint64_t commit_ = 0;
  std::vector<std::string> isr_;
  std::map<std::string, FollowerProgress> followers_;
  std::multimap<uint64_t, Completion> waiting_;  // by index
  uint64_t next_request_id_ = 1;
  bool superseded_ = false;
  bool stepped_down_ = false;
};

}  // namespace txmq::cluster
