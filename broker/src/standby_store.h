// The store a cluster node keeps while it follows (DESIGN.md "Wiring into
// txmqd: the decisions"): opened empty when txmqd starts, in the one
// session the broker will continue if this node wins an election, and
// applied from the replica log up to the commit index the follower has
// learned, so that a new leader replays only the entries of the last
// moments instead of everything the group ever stored.
//
// Thread "txmq-standby" (at nice 10) owns the store, the StoreRebuild and the
// ReplicaLogReader until Take stops it; applied() and failure are shared
// under mu_. The replica log belongs to the replication thread: this one
// reads committed entries off its files, which never change.
//
// Thread safety: Start, Take and the destructor from one thread (main);
// applied() from any.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "broker/src/cluster/file_replica_log.h"
#include "broker/src/replicated_round.h"
#include "broker/src/store_handover.h"

namespace txmq::broker {

class StandbyStore final : public StoreHandover {
 public:
  // Clears `store.dir` and opens the store there empty, then applies the
  // replica log in `log_dir` up to `committed()` (any thread may call it;
  // it must only grow) on its own thread, looking every `poll`, and tells
  // `applied` (if set) how many entries the store holds after each pass.
  // The last `keep_cached_log_bytes` it read of the log stay in the page
  // cache (the log's cached tail, FileReplicaLogOptions::cached_tail_bytes).
  static Result<std::unique_ptr<StandbyStore>> Start(
      const storage::StoreOptions& store, const std::string& log_dir,
      std::function<uint64_t()> committed, std::function<void(uint64_t)> applied = {},
      std::chrono::milliseconds poll = std::chrono::milliseconds(20),
      uint64_t keep_cached_log_bytes = 0);
  ~StandbyStore() override;
  StandbyStore(const StandbyStore&) = delete;
  StandbyStore& operator=(const StandbyStore&) = delete;

  // Stops applying. A store that failed to apply an entry (the error was
  // logged) is closed and not handed over: the broker rebuilds from empty.
  Kept Take(EventFd* round_done) override;
  // Entries applied so far.
  uint64_t applied() const;

 private:
  StandbyStore(const std::string& log_dir, std::function<uint64_t()> committed,
               std::function<void(uint64_t)> applied, std::chrono::milliseconds poll,
               uint64_t keep_cached_log_bytes);
  void Loop();
  // Stops the thread between two entries and joins it.
  void StopThread();

  EventFd unused_round_done_;  // the store raises it only for rounds it is submitted
  std::unique_ptr<storage::BrokerStore> store_;
  std::optional<StoreRebuild> rebuild_;  // over store_
  cluster::ReplicaLogReader reader_;
  const std::function<uint64_t()> committed_;
  const std::function<void(uint64_t)> on_applied_;
  const std::chrono::milliseconds poll_;

  mutable std::mutex mu_;
  std::condition_variable wake_;
  std::atomic<bool> stop_{false};
  uint64_t applied_ = 0;  // guarded by mu_
  Status failure_;        // guarded by mu_
  std::thread thread_;
};

}  // namespace txmq::broker
