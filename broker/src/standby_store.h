// The store a cluster node keeps while it follows (DESIGN.md "Wiring into
// txmqd: the decisions"): the one the broker will continue if this node
// wins an election, applied from the replica log up to the commit index
// the follower has learned, so that a new leader replays only the entries
// of the last moments instead of everything the group ever stored.
//
// A restarted node continues the store it kept before (its mark,
// replica_applied_mark.h, names the replica entry it was synced at; every
// round it holds after that is checked against the replica log) instead
// of building it again from the whole log; a store that cannot be
// continued (none, no mark, damaged, holding a round that differs from
// the log's) is cleared and built from empty, as the log says why. Rounds
// a leader's store holds past its log's end are compared with the entries
// the log gets next, and the store is built again only if they differ.
//
// Thread "txmq-standby" (at nice 10) owns the store, the StoreRebuild and the
// ReplicaLogReader from Follow until Take stops it; applied() and failure
// are shared under mu_. The replica log belongs to the replication thread:
// this one reads committed entries off its files, which never change.
//
// Thread safety: Open, Follow, Take and the destructor from one thread
// (main); applied() from any.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
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
  // Opens the store in `store.dir`: the one kept by a run before when it
  // can be continued, else cleared and empty. Reads the replica log in
  // `log_dir`, entries not yet known to be committed included: call it
  // before the replication thread opens that log. The last
  // `keep_cached_log_bytes` it reads of the log stay in the page cache
  // (the log's cached tail, FileReplicaLogOptions::cached_tail_bytes).
  // A kept store with more than `max_check_bytes` of rounds after its mark
  // (a leader's: marked at the hand-over) is built again instead, in the
  // background, rather than checked while the node waits to join.
  static Result<std::unique_ptr<StandbyStore>> Open(const storage::StoreOptions& store,
                                                    const std::string& log_dir,
                                                    uint64_t keep_cached_log_bytes = 0,
                                                    uint64_t max_check_bytes = kMaxCheckBytes);
  static constexpr uint64_t kMaxCheckBytes = 256ull << 20;
  // A leader's store may hold rounds its replica log never got (a power
  // loss kept the store's pages, not the log's; until 2026-12-05 the store
  // was written first, and a kill -9 did). Up to this many bytes of
  // them are kept aside in memory and compared with the entries the log
  // gets next; more, and the store is built again.
  static constexpr uint64_t kMaxAheadBytes = 64ull << 20;
  struct RoundAhead {
    int64_t time_ms = 0;
    std::string payload;  // the round's records and index operations
  };
  // Open, then Follow: for a log nobody writes meanwhile (tests).
  static Result<std::unique_ptr<StandbyStore>> Start(
      const storage::StoreOptions& store, const std::string& log_dir,
      std::function<uint64_t()> committed, std::function<void(uint64_t)> applied = {},
      std::chrono::milliseconds poll = std::chrono::milliseconds(20),
      uint64_t keep_cached_log_bytes = 0);
  ~StandbyStore() override;
  StandbyStore(const StandbyStore&) = delete;
  StandbyStore& operator=(const StandbyStore&) = delete;

  // Applies the replica log up to `committed()` (any thread may call it;
  // it must only grow) on its own thread, looking every `poll`, and tells
  // `applied` (if set) how many entries the store holds after each pass.
  // Once.
  void Follow(std::function<uint64_t()> committed, std::function<void(uint64_t)> applied = {},
              std::chrono::milliseconds poll = std::chrono::milliseconds(20));

  // Stops applying. A store that failed to apply an entry (the error was
  // logged), or continues entries the log no longer holds (a leader's
  // uncommitted tail, replaced), is closed and not handed over: the broker
  // rebuilds from empty.
  Kept Take(EventFd* round_done) override;
  // Entries applied so far (after Open: what the continued store holds).
  uint64_t applied() const;

  // True once a store continued from the last run turned out not to be
  // the log's (its last entries were an old leader's uncommitted tail,
  // since replaced): it stopped, and StartOver builds it from empty.
  bool WantsStartOver() const;
  // Stops the thread, discards the store, opens it empty and follows the
  // log again from its first entry. On a thread at normal priority (the
  // store's own threads inherit it): main's.
  Status StartOver();

 private:
  StandbyStore() = default;
  // Discards the store directory and opens it empty, applied 0.
  Status OpenEmpty();
  // The rebuild and the reader over store_, from entry applied_ on.
  void StartReading();
  void Loop();
  // Stops the thread between two entries and joins it.
  void StopThread();
  // Records in the store's directory what it holds, once it is synced.
  void Mark();
  // With rounds ahead: `e` must be the next of them (or write no round);
  // it is then matched, not applied (the store holds it).
  Status MatchAhead(const cluster::EntryView& e);
  // Deletes the log segments the leader deleted (retention), as the
  // applied rounds say (BrokerStore::kLogReleasedMeta); true while some
  // wait for the store's checkpoint to cover them.
  bool ReleaseAsTheLeaderDid();

  storage::StoreOptions options_;
  std::string log_dir_;
  uint64_t keep_cached_ = 0;
  EventFd unused_round_done_;  // the store raises it only for rounds it is submitted
  std::unique_ptr<storage::BrokerStore> store_;
  std::optional<StoreRebuild> rebuild_;              // over store_
  std::optional<cluster::ReplicaLogReader> reader_;  // set by Open
  bool release_pending_ = true;  // look at the first pass (a store kept from before)
  // Rounds the store holds past entry applied_, oldest first: a leader's,
  // never in its log; matched against the entries the log gets next.
  std::deque<RoundAhead> ahead_;
  std::function<uint64_t()> committed_;
  std::function<void(uint64_t)> on_applied_;
  std::chrono::milliseconds poll_{20};

  mutable std::mutex mu_;
  std::condition_variable wake_;
  std::atomic<bool> stop_{false};
  uint64_t applied_ = 0;      // guarded by mu_
  uint32_t applied_crc_ = 0;  // the chain value of entry applied_; guarded by mu_
  Status failure_;            // guarded by mu_
  bool fresh_ = false;        // built from empty in this run; guarded by mu_
  std::thread thread_;
};

}  // namespace txmq::broker
