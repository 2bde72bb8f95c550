// A ReplicaLog in files, on the storage engine's FileSystem layer (so tests
// can cut the power: tests/testutil/fault_fs.h). Layout and recovery are
// at the top of file_replica_log.cc.
//
// Thread safety: none (see replica_log.h).
#pragma once

#include <array>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "broker/src/cluster/replica_log.h"
#include "storage/src/file_system.h"

namespace txmq::cluster {

struct FileReplicaLogOptions {
  std::string dir;
  // Size of a new segment file (preallocated whole); an entry must fit in
  // one. At least 4 KiB. Default 64 MiB: few files, one roll a minute at
  // 1 MB/s.
  uint64_t segment_bytes = 64ull << 20;
  // Not owned; must outlive the log.
  storage::FileSystem* fs = storage::FileSystem::Default();
  // The page cache keeps about this many bytes at the log's end (what the
  // leader sends a follower from); older durable pages are dropped
  // (storage::LogOptions::cached_tail_bytes). 0: left to the kernel.
  uint64_t cached_tail_bytes = 256ull << 20;
};

// Where an entry lies: its segment (by first index) and offset there.
struct ReplicaEntryPlace {
  uint64_t segment = 0;
  uint64_t offset = 0;
  uint32_t length = 0;
  int64_t epoch = 0;
  uint32_t crc = 0;
};

// Reads the replica log in `dir` in order, through mappings of its own,
// for a thread that does not own the log: entries up to the commit index
// never change (they are never truncated), so they read whole while the
// owner appends after them. Each entry's chain is checked as recovery
// checks it; a break is kCorruption naming the entry. Pages read leave the
// page cache as it goes, but for the last `keep_cached` bytes read (in at
// most the last 9 segment files: fewer bytes when segments are small): a
// follower's standby reads right behind the log's end, whose pages the
// log keeps cached (cached_tail_bytes) for the node it may become, a
// leader catching up laggards from them.
//
// A reader continues where its last Read stopped, so one that follows a
// growing log (a follower's store applying entries as they commit) reads
// each entry once. Thread safety: none; one thread uses a reader.
class ReplicaLogReader {
 public:
  // The next Read starts at entry `after` + 1 (entries up to `after` are
  // walked past, not checked again). With `after_crc`, entry `after` must
  // have that chain value: a reader continuing what a store applied before
  // finds out when the log no longer holds those entries (a leader's
  // uncommitted tail replaced by the next leader's) as kCorruption.
  ReplicaLogReader(std::string dir, storage::FileSystem* fs, uint64_t after = 0,
                   uint64_t keep_cached = 0, std::optional<uint32_t> after_crc = std::nullopt);
  ~ReplicaLogReader();
  ReplicaLogReader(const ReplicaLogReader&) = delete;
  ReplicaLogReader& operator=(const ReplicaLogReader&) = delete;

  // Calls `fn` with each entry after the last one read up to `upto`, which
  // must be committed (so on disk whole); kCorruption when the log ends
  // before it. The first call walks to entry `after` (and checks
  // `after_crc`) even when `upto` is not past it. `fn`'s error stops the walk and is returned; the
  // entry it failed on is read again by the next call.
  Status Read(uint64_t upto, const std::function<Status(const EntryView&)>& fn);
  // The last entry handed to `fn` (or `after`).
  uint64_t last() const { return last_read_; }
  // The last Read failed where the log's recovery would end the log: the
  // entry it wanted is not whole, not the next index, or does not chain
  // (a torn tail; not: entry `after` is not the one read before).
  bool ended() const { return ended_; }

 private:
  // Drops pages read until at most `keep` bytes read stay cached.
  void DropReadPages(uint64_t keep);

  const std::string dir_;
  storage::FileSystem* const fs_;
  const uint64_t keep_cached_;
  uint64_t last_read_ = 0;
  uint32_t last_crc_ = 0;  // the chain value of entry last_read_
  // Entries up to this are walked past, unchecked, on the first Read;
  // the last of them must have this chain value (when set).
  const uint64_t skip_until_;
  const std::optional<uint32_t> skip_until_crc_;
  bool walked_;  // past entry skip_until_ (its chain value checked)
  bool ended_ = false;
  std::unique_ptr<storage::File> file_;
  uint64_t offset_ = 0;   // where entry last_read_ + 1 starts in file_
  uint64_t dropped_ = 0;  // file_'s pages before this left the cache
  // Segments read through whose last pages read are still cached, oldest
  // first: [from, to) of each.
  struct ReadThrough {
    std::unique_ptr<storage::File> file;
    uint64_t from = 0, to = 0;
  };
  std::deque<ReadThrough> behind_;
  static constexpr size_t kMaxSegmentsBehind = 8;
  uint64_t cached_ = 0;  // bytes read and not dropped, behind_'s and file_'s
};

// Entries 1..`upto` through a ReplicaLogReader.
Status ReadReplicaEntries(const std::string& dir, storage::FileSystem* fs, uint64_t upto,
                          const std::function<Status(const EntryView&)>& fn);

class FileReplicaLog final : public ReplicaLog {
 public:
  // Opens (or creates) the log in options.dir and recovers it: the log ends
  // at the first entry that is not whole or does not chain; segments past
  // the end are removed. kCorruption when the first segment is not the
  // log's start.
  static Result<std::unique_ptr<FileReplicaLog>> Open(FileReplicaLogOptions options);
  FileReplicaLog(const FileReplicaLog&) = delete;
  FileReplicaLog& operator=(const FileReplicaLog&) = delete;

  int64_t highest_epoch() const override { return highest_epoch_; }
  Status RaiseEpoch(int64_t epoch) override;
  EntryRef last() const override { return last_; }
  EntryRef durable() const override { return durable_; }
  const EpochTable& epochs() const override { return epochs_; }
  Status Append(const ReplicaEntry& entry) override;
  Status Sync() override;
  Status TruncateAfter(uint64_t keep) override;
  Result<ReplicaEntry> Read(uint64_t index) const override;
  Result<EntryView> View(uint64_t index) const override;
  std::optional<uint32_t> CrcAt(uint64_t index) const override;
  // The size of its segment files: what it takes on disk. The log is not
  // truncated yet, so this only grows (DESIGN.md "Replication").
  uint64_t disk_bytes() const;

 private:
  using Loc = ReplicaEntryPlace;

  explicit FileReplicaLog(FileReplicaLogOptions options);
  Status Recover();
  Status RemoveSegment(uint64_t first);
  // Removes every segment named after entry `keep` (all are tried; the
  // first error is returned).
  Status RemoveSegmentsAfter(uint64_t keep);
  // Drops entries after `keep` from memory; the next append goes after it.
  void ForgetAfter(uint64_t keep);
  std::string SegmentPath(uint64_t first) const;
  std::string EpochPath() const { return options_.dir + "/epoch"; }
  // Drops the cache of what lies more than cached_tail_bytes before the
  // tail (which is durable: after Sync or recovery).
  void DropCacheBehind();

  const FileReplicaLogOptions options_;
  std::map<uint64_t, std::unique_ptr<storage::File>> segments_;  // by first index
  // Where entries lie, sparsely: memory must not grow by a record per
  // entry (a busy group appends a thousand a second, for weeks). marks_[k]
  // is entry k * kStride + 1; any other is found from the one before it
  // by its header (next entry: the segment named by its index if there is
  // one, else right after it). A few places located last make a reader
  // going forward (a follower catching up, the store rebuilt) step one
  // entry at a time.
  static constexpr uint64_t kStride = 64;
  struct Mark {
    uint64_t segment = 0;
    uint64_t offset = 0;
  };
  std::vector<Mark> marks_;
  Loc tail_loc_;  // the last entry's (valid when last_.index > 0)
  static constexpr size_t kLocated = 4;
  mutable std::array<std::pair<uint64_t, Loc>, kLocated> located_;  // (index, where); 0: none
  mutable size_t next_located_ = 0;
  // Entry `index`, 1..last_.index.
  Loc Locate(uint64_t index) const;
  Loc ReadLoc(uint64_t segment, uint64_t offset) const;
  void NoteLoc(uint64_t index, const Loc& loc);
  EpochTable epochs_;
  int64_t highest_epoch_ = 0;
  EntryRef last_;
  EntryRef durable_;
  uint64_t tail_segment_ = 0;  // where the next entry goes (0: a new segment)
  uint64_t tail_offset_ = 0;
  std::set<uint64_t> unsynced_;  // segments written since the last Sync
  // The cache holds nothing before this offset of this segment, nor of
  // the segments before it.
  uint64_t cache_dropped_segment_ = 0;
  uint64_t cache_dropped_offset_ = 0;
  // Views of entries behind that point (a follower catching up, the store
  // rebuilt from the log) bring their pages back: counted here, and
  // dropped again by View once they add up to cached_tail_bytes.
  struct ColdReads {
    uint64_t bytes = 0;
    uint64_t from_segment = 0, from_offset = 0;  // the span they fell in
    uint64_t to_segment = 0, to_offset = 0;
  };
  mutable ColdReads cold_;
  void NoteColdView(const Loc& loc) const;
  // Drops the cache from offset `from_offset` of the segment named
  // `from_segment` to `to_offset` of the one named `to_segment`.
  void DropCacheOf(uint64_t from_segment, uint64_t from_offset, uint64_t to_segment,
                   uint64_t to_offset) const;
};

}  // namespace txmq::cluster
