// Disk watermark: below a free-space threshold (--min-free-disk) on the
// data directory's file system the broker refuses new messages (sends,
// transactional halves, dead-letter resends, topic creation) with
// RESOURCE_EXHAUSTED, while consumers still pull, ack and nack and
// transactions still end; it accepts them again by itself once an eighth
// more than the threshold is free (hysteresis, so it does not flap). Each
// transition is logged once.
//
// Why refuse at a threshold and not at ENOSPC: a failed write stops the
// broker (fail-stop: in-memory state may be ahead of the disk), and then
// nobody can drain. The threshold keeps the room the broker itself still
// needs while it refuses (MinFreeDiskRoom in txmq/broker.h): the next
// commit-log segments for acks and transaction ends, memtable flushes and
// compactions of the index.
//
// Free space is read from a FreeSpaceSource (statvfs of the data
// directory) every kReadInterval on the core thread. Between reads the
// estimate drops by what the commit log allocated since the last read:
// segments are preallocated whole, so that is what new data takes from
// the file system (bytes written into a segment already allocated take
// nothing, and counting them would refuse early and then flap at the next
// read). A producer writing faster than one segment a second is caught at
// the segment it opens, not a second later.
//
// Thread safety: a DiskWatermark belongs to the broker's core thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "protocol/src/util.h"
#include "txmq/broker.h"
#include "txmq/status.h"

namespace txmq {

// Where a broker reads the free space of its data directory.
// Thread safety: FreeBytes may be called from any one thread at a time.
class FreeSpaceSource {
 public:
  virtual ~FreeSpaceSource() = default;
  // Bytes an unprivileged writer may still use on the file system that
  // holds `dir`.
  virtual Result<uint64_t> FreeBytes(const std::string& dir) = 0;
};

// The real source: statvfs(2), f_bavail x f_frsize.
std::shared_ptr<FreeSpaceSource> StatvfsFreeSpace();

}  // namespace txmq

namespace txmq::broker {

class DiskWatermark {
 public:
  static constexpr std::chrono::milliseconds kReadInterval{1000};

  // Reads options.free_space (statvfs when null), options.data_dir and
  // EffectiveMinFreeDisk(options).
  explicit DiskWatermark(const BrokerOptions& options);

  // Reads the source at once, so a broker started on a full disk refuses
  // from its first request. `log_allocated`: the commit log's running
  // total of bytes allocated (BrokerStore::log_allocated_bytes()).
  void Start(SteadyTime now, uint64_t log_allocated);
  // Each loop pass: reads the source when kReadInterval passed, else
  // updates the estimate; logs a transition.
  void Tick(SteadyTime now, uint64_t log_allocated);

  // OK, or RESOURCE_EXHAUSTED naming the threshold, the free space and the
  // data directory (counted as a refusal).
  Status CheckAccepts() const;

  bool low() const { return low_; }
  bool enabled() const { return min_free_ > 0; }
  // The current estimate.
  uint64_t free_bytes() const { return estimate_; }
  uint64_t min_free() const { return min_free_; }
  // Free space needed to accept new messages again after being low.
  uint64_t resume_at() const { return min_free_ + min_free_ / 8; }
  uint64_t refused() const { return refused_; }

 private:
  void Read(SteadyTime now, uint64_t log_allocated);
  void Update(bool from_read);

  std::shared_ptr<FreeSpaceSource> source_;
  std::string dir_;
  uint64_t min_free_;
  SteadyTime next_read_{};
  uint64_t read_free_ = 0;          // what the last read said
  uint64_t allocated_at_read_ = 0;  // the log's allocation total then
  uint64_t estimate_ = 0;           // read_free_ less what the log allocated since
  bool low_ = false;
  bool read_failed_ = false;        // the last read failed (logged once)
  uint64_t low_since_refused_ = 0;  // refused_ when the current low spell began
  mutable uint64_t refused_ = 0;
};

}  // namespace txmq::broker
