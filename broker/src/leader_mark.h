// A leader's store marked as a follower's is (replica_applied_mark.h), so
// that a leader stopped or restarted continues its store at its next
// start instead of checking, or building again, every round it wrote
// while it led. Marks name only committed rounds (their replica entries
// never change, so no chain value is needed) that the store has synced:
// every `every_bytes` of committed rounds, and at a clean stop.
//
// Core thread only.
#pragma once

#include <cstdint>
#include <optional>

#include "storage/src/broker_store.h"
#include "storage/src/store_round.h"

namespace txmq::broker {

class LeaderMark {
 public:
  explicit LeaderMark(uint64_t every_bytes = 64ull << 20) : every_bytes_(every_bytes) {}

  // `round` (one that wrote to the store) committed as replica entry
  // `ticket`.
  void Committed(const storage::Round& round, uint64_t ticket);
  // Marks the last committed round once `every_bytes` of them piled up
  // since the last mark (or now, with `stopping`), if the store has synced
  // it; else at a later call.
  void MaybeWrite(const storage::BrokerStore& store, bool stopping = false);

 private:
  struct Latest {
    storage::LogCursor after;  // the store's cursor after the round
    uint64_t ticket = 0;
  };
  const uint64_t every_bytes_;
  std::optional<Latest> latest_;
  uint64_t bytes_since_mark_ = 0;
};

}  // namespace txmq::broker
