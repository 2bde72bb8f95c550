#include "broker/src/leader_mark.h"

#include "broker/src/replica_applied_mark.h"
#include "protocol/src/log.h"

namespace txmq::broker {

void LeaderMark::Committed(const storage::Round& round, uint64_t ticket) {
  const storage::PendingEntry& e = round.entry();
  latest_ = Latest{{e.position + e.bytes(), e.index + 1, e.crc}, ticket};
  bytes_since_mark_ += e.bytes();
}

void LeaderMark::MaybeWrite(const storage::BrokerStore& store, bool stopping) {
  if (!latest_ || bytes_since_mark_ == 0) return;
  if (!stopping && bytes_since_mark_ < every_bytes_) return;
  if (store.synced_rounds() < latest_->after.index - 1) return;  // not durable there yet
  const ReplicaAppliedMark mark{latest_->after, latest_->ticket, std::nullopt};
  if (Status s = WriteReplicaAppliedMark(store.options().fs, store.options().dir, mark); !s.ok()) {
    // Only the next start's speed depends on it.
    Logger("broker")->warn("cannot record what the store holds of the replica log: {}",
                           s.ToString());
    return;
  }
  bytes_since_mark_ = 0;
}

}  // namespace txmq::broker
