// Group commit: the broker's single writer.
//
// The broker's core thread collects every change that arrives while the
// disk is busy into one open CommitRound. When the storage thread is idle,
// the core thread hands the round over (Submit); the storage thread applies
// it as one LevelDB WriteBatch with one fsync (sync=true unless the flush
// mode is async) and hands it back (TakeFinished) with its Status. Only
// then does the core thread run the round's completions, which is where
// replies are sent: nothing is acknowledged before it is durable.
//
// At most one round is in flight, so rounds are durable in submission order
// and requests that arrive during an fsync form the next batch.
//
// Thread "txmq-storage" (started by the constructor) owns the write call.
// Shared under mu_: the in-flight and finished round slots.
#pragma once

#include <leveldb/db.h>
#include <leveldb/write_batch.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "protocol/src/event_fd.h"
#include "txmq/status.h"

namespace txmq::storage {

struct CommitRound {
  leveldb::WriteBatch batch;
  // Run on the core thread once the batch is durable (or failed).
  std::vector<std::function<void(const Status&)>> on_durable;
  Status status;

  bool empty() const { return on_durable.empty() && batch.ApproximateSize() <= 12; }
};

struct CommitStats {
  uint64_t rounds = 0;
  uint64_t completions = 0;
  uint64_t bytes = 0;
  uint64_t write_micros = 0;  // total time spent in Write (incl. fsync)
};

class GroupCommitter {
 public:
  // `done` is raised after each round finishes; the core thread polls it.
  GroupCommitter(leveldb::DB* db, bool sync, EventFd* done);
  // Finishes the round in flight, then stops the thread.
  ~GroupCommitter();
  GroupCommitter(const GroupCommitter&) = delete;
  GroupCommitter& operator=(const GroupCommitter&) = delete;

  // Core thread. True while a submitted round has not been taken back.
  bool busy() const { return busy_; }
  // Core thread. Requires !busy().
  void Submit(std::unique_ptr<CommitRound> round);
  // Core thread. The finished round, or null while it is still writing.
  std::unique_ptr<CommitRound> TakeFinished();
  // Core thread. Blocks until the round in flight (if any) finished and
  // returns it.
  std::unique_ptr<CommitRound> WaitFinished();
  // Core thread. Requires !busy(). Writes `round` on the calling thread
  // (its status set), for a small round nobody else waits behind: it saves
  // the two thread hand-offs of Submit/TakeFinished.
  void WriteInline(CommitRound& round);

  CommitStats stats() const;

 private:
  void Run();
  void Write(CommitRound& round);

  leveldb::DB* db_;
  bool sync_;
  EventFd* done_;
  bool busy_ = false;  // core thread only

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::unique_ptr<CommitRound> in_flight_;  // guarded by mu_
  std::unique_ptr<CommitRound> finished_;   // guarded by mu_
  bool stopping_ = false;                   // guarded by mu_
  CommitStats stats_;                       // guarded by mu_
  std::thread thread_;
};

}  // namespace txmq::storage
