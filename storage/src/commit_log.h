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
// Open() walks the log (from its first segment, or with verify_all off
// from the recovery cursor), checks every entry's CRC and the chain, hands
// each entry from the cursor (the checkpoint: everything before it is
// reflected in the index) on to a replay function, and tells a torn tail
// from damage (log_scan.cc):
//   * Before the cursor every entry was durable (a checkpoint names only
//     durable entries): anything not whole there is damage.
//   * After it, the log ends at the first entry that is not whole, unless a
//     whole entry that says "everything before me was synced"
//     (kPreviousSynced) lies anywhere further on: then the damaged entry
//     was durable once and that is damage, not a torn write.
//   * A segment file shorter than the size its entries say it was created
//     with, or a hole between two segments, is damage wherever it is.
// Damage fails Open with CORRUPTION naming the segment, the byte in it,
// the log position and the entry, unless a repair accepted that stretch
// (LogOptions::skips) or the caller salvages (LogOptions::on_damage).
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
#include <optional>
#include <string>
#include <vector>

#include "storage/src/file_system.h"
#include "storage/src/log_format.h"
#include "txmq/status.h"

namespace txmq::storage {

// Where the log continues: the next entry is written at `position`, is
// number `index`, and chains to `prev_crc`.
struct LogCursor {
  uint64_t position = 0;
  uint64_t index = 1;
  uint32_t prev_crc = 0;
  bool operator==(const LogCursor&) const = default;
};

// A stretch of the log a repair gave up on: [from, to) holds damaged or
// missing bytes. A scan that reaches `from` continues at `resume` (whose
// position is `to`): the next whole entry, or where the next one is
// written.
struct LogSkip {
  uint64_t from = 0;
  LogCursor resume;
  int64_t repaired_ms = 0;  // when (broker time), for people
  uint64_t to() const { return resume.position; }
};

// Damage a scan found: [from, to) is not a chain of whole entries.
struct LogDamage {
  uint64_t from = 0;
  uint64_t to = 0;              // the next whole entry, or the end of the damaged segment
  std::string segment;          // path of the segment holding `from` ("" if none does)
  uint64_t segment_offset = 0;  // `from` in that file
  uint64_t expected_index = 0;  // the entry that should start at `from` (0: unknown)
  bool before_cursor = false;   // durable for sure: before the recovery cursor
  std::string what;             // why, for a person
  LogCursor resume;             // where the scan continued (position `to`)
  bool whole_after = false;     // a whole entry starts at `to`
  // The damaged bytes as mapped, per segment: (log position, bytes). Valid
  // while the log is open; empty once kept (the report copies the rest).
  std::vector<std::pair<uint64_t, std::string_view>> bytes;
  // One line naming the file, the byte, the position and the entry.
  std::string Describe() const;
};

struct LogOptions {
  std::string dir;
  // Size of a new segment file, a multiple of 1 KiB. An entry must fit in
  // one segment.
  uint64_t segment_bytes = 128ull << 20;
  FileSystem* fs = FileSystem::Default();
  // Check every entry from the first segment on, not only those replayed.
  bool verify_all = true;
  // Hand the entries before the cursor to the replay function too (an
  // index rebuilt from the log).
  bool replay_before_cursor = false;
  // Stretches a repair accepted as lost; the scan steps over them.
  std::vector<LogSkip> skips;
  // Salvage: damage does not fail Open; each damaged stretch is handed to
  // this and the scan continues after it.
  std::function<void(const LogDamage&)> on_damage;
  // The page cache keeps the last this-many durable bytes of the log (what
  // consumers at the tail read); older pages are dropped as the log grows
  // (File::DropCache), so a long log does not fill memory with pages
  // nobody reads, and new writes reuse pages instead of taking fresh ones.
  // 0: left to the kernel.
  uint64_t cached_tail_bytes = 256ull << 20;
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
  // `from` on. Fails CORRUPTION when it finds damage (see above), also
  // when `from` lies in a segment that is gone.
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
  // For a thread that is not the writer (LevelDB's, about to sync a table
  // file holding index changes of rounds written here): fdatasyncs every
  // segment that may hold bytes written since the last Sync. What Sync
  // and synced() report does not change.
  Status SyncWrittenFromAnyThread();
  // After a start, once the store checked that nothing it indexes lies
  // past the log's end: writes zeros over what the end's segment holds
  // after it (a torn or unsynced entry) and syncs them. Space is written
  // once from zeros: that is how a later entry torn by a crash is told
  // from a damaged one (its unwritten sectors read as zeros).
  Status ZeroAfterEnd();
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
  // Any thread: a reader used the bytes [position, position + n) of a view.
  // Reads behind the cached tail are counted: once they add up to the
  // tail's size, the storage thread drops their pages again after its next
  // sync, so a reader far behind (a consumer catching up) keeps at most
  // that much more of the log in memory, not all it read.
  void NoteRead(uint64_t position, uint64_t n) const;

  // Core thread. Removes the segments that lie wholly before `position`;
  // returns how many bytes that freed.
  Result<uint64_t> DeleteBefore(uint64_t position);
  // Repair, before the first Place: the log continues at `at` (beyond
  // positions the index still names), not where the scan ended.
  void ContinueAt(const LogCursor& at);
  // Any thread. The time of the entry at `position`; when the entry there
  // is damaged, of the next whole entry after it. None if neither exists.
  std::optional<int64_t> TimeAt(uint64_t position) const;
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
  // Sets where the next entry goes (the end of the scan, or ContinueAt).
  void SetEnd(const LogCursor& at);

  // log_scan.cc: the walk and its parts.
  Status Walk(LogCursor from, const ReplayFn& replay, LogCursor* end);
  Status Damaged(LogDamage damage);
  const LogSkip* SkipAt(uint64_t position) const;
  bool InSkip(uint64_t from, uint64_t to) const;
  // The first whole entry after `position` (this segment on, then the
  // later ones) that is at least number `min_index` and (with `synced`)
  // says every entry before it was synced; none if none. Caller holds mu_
  // (or is Open).
  std::optional<LogEntry> FindSyncedEntryAfter(uint64_t position, uint64_t min_index,
                                               bool synced = true) const;
  // The size the entries of the segment at `base` say it was created with
  // (0 if its first entry header is unreadable).
  uint64_t CreatedSize(uint64_t base) const;
  uint64_t BaseOf(uint64_t position) const;
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
  // Where the last Sync (or the start) left the log durable.
  std::atomic<uint64_t> synced_position_{0};
  // A failed fdatasync of SyncWrittenFromAnyThread; every later Sync
  // returns it. Guarded by mu_.
  Status foreign_sync_error_;
  std::vector<File*> unsynced_;
  // Written by the storage thread (and Open), read by NoteRead: before
  // this the page cache holds only what readers brought back.
  std::atomic<uint64_t> cache_dropped_before_{0};
  // NoteRead's count of reads before cache_dropped_before_, and the span
  // they fell in.
  mutable std::atomic<uint64_t> cold_read_bytes_{0};
  mutable std::atomic<uint64_t> cold_read_from_{UINT64_MAX};
  mutable std::atomic<uint64_t> cold_read_to_{0};
  // Storage thread: drops the cache of durable bytes more than
  // cached_tail_bytes behind `durable_end`, and of what readers brought
  // back behind that once NoteRead counted enough.
  void DropCacheBehind(uint64_t durable_end);
  // Drops the cache of [from, to). Caller holds mu_.
  void DropCacheOf(uint64_t from, uint64_t to);
};

// "<base:20 digits>.seg"
std::string SegmentFileName(uint64_t base);

// Where the log in `dir` starts: its first segment's first entry (the
// entry number 1 of a new log when there is none or it is unreadable).
// For a repair that has no checkpoint to start from.
LogCursor FirstEntryCursor(FileSystem* fs, const std::string& dir);

// Decodes and checks the entry at the start of `bytes` (a segment from
// that point on). False when it is not a whole, intact entry.
bool ParseEntry(std::string_view bytes, uint64_t position, LogEntry* out);

}  // namespace txmq::storage
