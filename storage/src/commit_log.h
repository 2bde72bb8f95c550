// The commit log: every write round of the broker becomes one entry,
// appended to preallocated segment files and made durable with one
// fdatasync (layout: log_format.h).
//
// A round's life: the core thread Place()s the entry (it learns the entry's
// log position and index, so it can index what is inside before anything
// is written), the storage thread Write()s and Sync()s it, and the core
// thread serves it from then on through Read(), a view into the segment's
// read-only mapping (no copy, no system call).
//
// Open() scans the log from a cursor (the checkpoint: everything before it
// is reflected in the index) to its end, hands each entry to a replay
// function, and stops at the first entry that is torn or missing: the log
// then continues there. Each entry says whether everything before it was
// synced when it was written (always under flush sync): a damaged entry
// followed by a whole one that says so is not a torn write but damage, and
// Open refuses, naming the segment and position, instead of silently
// cutting acknowledged data. (Under flush async several entries may be
// torn at once, and the log simply ends at the first.)
//
// Threads: Place, placed_end, DeleteBefore on the core thread; Write,
// Sync, PrepareNextSegment, durable_end on the storage thread; Read and
// Segments on either. The segment table is guarded by mu_.
#pragma once

#include <sys/uio.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "storage/src/file_system.h"
#include "storage/src/log_format.h"
#include "txmq/status.h"

namespace txmq::storage {

struct LogOptions {
  std::string dir;
  // Size of a new segment file. An entry must fit in one segment.
  uint64_t segment_bytes = 128ull << 20;
  FileSystem* fs = FileSystem::Default();
};

// Where the log continues: the next entry is written at `position`, is
// number `index`, and chains to `prev_crc`.
struct LogCursor {
  uint64_t position = 0;
  uint64_t index = 1;
  uint32_t prev_crc = 0;
  bool operator==(const LogCursor&) const = default;
};

// One entry as stored; `payload` views into the segment mapping.
struct LogEntry {
  uint64_t position = 0;
  log::Header header;
  std::string_view payload;
  uint64_t end() const { return position + log::kHeaderBytes + header.length; }
};

// A round on its way to the log. The caller fills epoch, time_ms and the
// payload pieces (which must stay valid until Write returns); Place fills
// position and index; Write fills crc.
struct PendingEntry {
  uint64_t epoch = 1;
  int64_t time_ms = 0;
  std::vector<iovec> payload;
  size_t payload_bytes = 0;

  uint64_t position = 0;
  uint64_t index = 0;
  bool starts_segment = false;  // the first entry of a new segment
  uint32_t crc = 0;

  void Add(const void* data, size_t n) {
    payload.push_back({const_cast<void*>(data), n});
    payload_bytes += n;
  }
  size_t bytes() const { return log::kHeaderBytes + payload_bytes; }
};

struct SegmentInfo {
  uint64_t base = 0;
  uint64_t size = 0;
};

class CommitLog {
 public:
  using ReplayFn = std::function<Status(const LogEntry&)>;

  // Opens (or creates) the log in options.dir and replays every entry from
  // `from` on. Fails CORRUPTION when entries before the end are damaged,
  // and NOT_FOUND when `from` lies in a segment that is gone.
  static Result<std::unique_ptr<CommitLog>> Open(const LogOptions& options, LogCursor from,
                                                 const ReplayFn& replay);
  ~CommitLog();
  CommitLog(const CommitLog&) = delete;
  CommitLog& operator=(const CommitLog&) = delete;

  // Core thread. Reserves the next entry's place; TOO_LARGE when it cannot
  // fit in a segment.
  Status Place(PendingEntry& entry);
  // Core thread: where the next entry will go.
  const LogCursor& placed_end() const { return placed_; }

  // Storage thread. Writes a placed entry (in Place order), creating its
  // segment when needed. Not durable until Sync.
  Status Write(PendingEntry& entry);
  // Storage thread. Makes every written entry durable.
  Status Sync();
  // Storage thread, between rounds: creates the segment after the one in
  // use once that is half full, so a roll never waits for a file.
  Status PrepareNextSegment();
  // Storage thread: after the last written entry.
  const LogCursor& written_end() const { return written_; }

  // Any thread. A view of [position, position + n) valid until that
  // segment is deleted; NOT_FOUND when it is gone or not in the log.
  Result<std::string_view> Read(uint64_t position, size_t n) const;
  // Any thread. From `position` to the end of its segment (records are
  // parsed from such a view); NOT_FOUND when it is not in the log.
  Result<std::string_view> ReadFrom(uint64_t position) const;
  // Any thread. The whole entry at `position`, checksum verified.
  Result<LogEntry> ReadEntry(uint64_t position) const;

  // Core thread. Removes the segments that lie wholly before `position`;
  // returns how many bytes that freed.
  Result<uint64_t> DeleteBefore(uint64_t position);
  // Any thread: the segments, oldest first.
  std::vector<SegmentInfo> Segments() const;
  // First position still in the log.
  uint64_t start() const;
  // Any thread. Bytes of the segment files created since Open: what the
  // log took from the file system (segments are preallocated whole).
  uint64_t allocated_bytes() const { return allocated_bytes_.load(std::memory_order_relaxed); }

  const LogOptions& options() const { return options_; }

 private:
  explicit CommitLog(const LogOptions& options) : options_(options) {}
  Status LoadSegments();
  Status Scan(LogCursor from, const ReplayFn& replay);
  // The segment holding `position`, or null. Caller holds mu_.
  File* Find(uint64_t position) const;
  std::string SegmentPath(uint64_t base) const;
  Result<File*> OpenSegment(uint64_t base);

  LogOptions options_;

  mutable std::mutex mu_;
  std::map<uint64_t, std::unique_ptr<File>> segments_;  // by base; guarded by mu_
  std::atomic<uint64_t> allocated_bytes_{0};

  // Core thread.
  LogCursor placed_;
  uint64_t placed_segment_base_ = 0;
  uint64_t placed_segment_end_ = 0;

  // Storage thread.
  LogCursor written_;
  uint64_t synced_index_ = 0;  // entries up to this index are durable
  std::vector<File*> unsynced_;
};

// Decodes and checks the entry at the start of `bytes` (a segment from
// that point on). False when it is not a whole, intact entry.
bool ParseEntry(std::string_view bytes, uint64_t position, LogEntry* out);

}  // namespace txmq::storage
