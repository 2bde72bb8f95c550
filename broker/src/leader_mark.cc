#include "broker/src/leader_mark.h"

#include <optional>

#include "broker/src/replica_applied_mark.h"
#include "protocol/src/log.h"

namespace txmq::broker {

void LeaderMark::Committed(const storage::Round& round, uint64_t ticket) {
  const storage::PendingEntry& e = round.entry();
  done_.push_back({{e.position + e.bytes(), e.index + 1, e.crc}, ticket});
  // Only the newest synced one is marked: older ones may go.
  if (done_.size() > RoundReplicator::kCommittedKept) done_.pop_front();
  bytes_since_mark_ += e.bytes();
}

void LeaderMark::MaybeWrite(const storage::BrokerStore& store, const RoundReplicator& replicator,
                            bool stopping) {
  if (done_.empty()) return;
  if (!stopping && bytes_since_mark_ < every_bytes_) return;
  const uint64_t synced = store.synced_rounds();
  std::optional<Done> newest;
  while (!done_.empty() && done_.front().after.index - 1 <= synced) {
    newest = done_.front();
    done_.pop_front();
  }
  if (!newest) return;  // none durable in the store yet
  const auto entry = replicator.CommittedEntry(newest->ticket);
  if (!entry) return;
  const ReplicaAppliedMark mark{newest->after, entry->index, entry->crc};
  if (Status s = WriteReplicaAppliedMark(store.options().fs, store.options().dir, mark); !s.ok()) {
    // Only the next start's speed depends on it.
    Logger("broker")->warn("cannot record what the store holds of the replica log: {}",
                           s.ToString());
    return;
  }
  bytes_since_mark_ = 0;
}

}  // namespace txmq::broker
