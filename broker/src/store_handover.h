// A broker store that something other than the broker kept up to date
// from the replicated log before the broker opened (a cluster node's
// follower, broker/src/standby_store.h), handed to the broker's Init so it
// continues that store instead of rebuilding every round from empty.
#pragma once

#include <cstdint>
#include <memory>

#include "protocol/src/event_fd.h"
#include "storage/src/broker_store.h"

namespace txmq::broker {

class StoreHandover {
 public:
  struct Kept {
    // Null: nothing to continue (the broker rebuilds from empty).
    std::unique_ptr<storage::BrokerStore> store;
    // The replicated entries it holds: 1..applied.
    uint64_t applied = 0;
  };
  virtual ~StoreHandover() = default;
  // Once, on the broker's opening thread. The store is synced and raises
  // `round_done` from now on (BrokerStore::Open's).
  virtual Kept Take(EventFd* round_done) = 0;
};

}  // namespace txmq::broker
