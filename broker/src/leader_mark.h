// A leader's store marked as a follower's is (replica_applied_mark.h), so
// that a leader stopped or restarted continues its store at its next
// start instead of checking, or building again, every round it wrote
// while it led. A mark names the newest committed round the store has
// synced, with the replica entry it became (RoundReplicator::
// CommittedEntry: its index and chain crc; tickets are not indexes), every
// `every_bytes` of committed rounds and at a clean stop.
//
// Core thread only.
#pragma once

#include <cstdint>
#include <deque>

#include "broker/src/round_replicator.h"
#include "storage/src/broker_store.h"
#include "storage/src/store_round.h"

namespace txmq::broker {

class LeaderMark {
 public:
  explicit LeaderMark(uint64_t every_bytes = 64ull << 20) : every_bytes_(every_bytes) {}

  // `round` (one that wrote to the store) committed as ticket `ticket`.
  void Committed(const storage::Round& round, uint64_t ticket);
  // Marks once `every_bytes` of committed rounds piled up since the last
  // mark (or now, with `stopping`), if the store has synced one of them;
  // else at a later call.
  void MaybeWrite(const storage::BrokerStore& store, const RoundReplicator& replicator,
                  bool stopping = false);

 private:
  struct Done {
    storage::LogCursor after;  // the store's cursor after the round
    uint64_t ticket = 0;
  };
  const uint64_t every_bytes_;
  std::deque<Done> done_;  // committed since the last mark, oldest first
  uint64_t bytes_since_mark_ = 0;
};

}  // namespace txmq::broker
