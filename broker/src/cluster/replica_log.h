// The replicated log of one broker group, as one replica holds it.
//
// Each entry is one write round of the broker store (its payload is
// opaque here), tagged with the epoch of the leader that wrote it and
// chained by crc: crc(i) = masked CRC32C of (crc(i-1), epoch, index,
// payload), crc(0) = 0. Two replicas that hold the same (index, crc) hold
// the same entries up to that index, which is what lets the leader check a
// follower's log with one number (protocol/replication.capnp).
//
// A replica log keeps, durably:
// - its entries, appended in index order and fsynced by Sync();
// - the highest epoch it has seen (RaiseEpoch is durable before it
//   returns: a follower refuses every later request of a lower epoch, even
//   after a restart);
// and derives from the entries the epoch -> start-index table (the first
// index each epoch wrote: Kafka's leader-epoch cache, here rebuilt from the
// log itself, so it cannot disagree with it).
//
// Why not the storage engine's CommitLog: its entry crc covers node-local
// header fields (segment size, the "previous synced" flag, local time), so
// two replicas' crcs of one round would differ, and it has no truncation:
// its recovery scan treats a whole entry after a damaged one as proof of
// damage, so overwriting a suffix would need a new rule there. The replica
// log is therefore its own small file format (file_replica_log.h) on the
// same FileSystem layer, so the power-loss tests' FaultFileSystem applies.
// When replication is wired into txmqd, the replica log is the durable
// record and the store applies committed entries from it (DESIGN.md
// "Replication").
//
// Thread safety: none; one thread (the replication thread) owns a log.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "txmq/status.h"

namespace txmq::cluster {

// An entry named by its index and chain crc; {0, 0} is the empty log.
struct EntryRef {
  uint64_t index = 0;
  uint32_t crc = 0;
  bool operator==(const EntryRef&) const = default;
};

struct ReplicaEntry {
  uint64_t index = 0;
  int64_t epoch = 0;
  uint32_t crc = 0;
  std::string payload;
  EntryRef ref() const { return {index, crc}; }
  bool operator==(const ReplicaEntry&) const = default;
};

// An entry whose payload stays where the log keeps it (no copy).
struct EntryView {
  uint64_t index = 0;
  int64_t epoch = 0;
  uint32_t crc = 0;
  std::string_view payload;
};

// The chain crc of the entry after `prev_crc`.
uint32_t ChainCrc(uint32_t prev_crc, int64_t epoch, uint64_t index, std::string_view payload);

// Epoch -> the first index written in it, for the epochs present in a log.
// Epochs grow with the index, so both keys and values are increasing.
class EpochTable {
 public:
  // Notes that `index` (the next entry) has `epoch`.
  void Append(int64_t epoch, uint64_t index);
  // Forgets every entry after `last` (epochs that started after it).
  void TruncateAfter(uint64_t last);
  // The largest epoch <= `epoch` in the table, or none.
  std::optional<int64_t> FloorEpoch(int64_t epoch) const;
  // First index of `epoch` (which must be in the table).
  uint64_t StartOf(int64_t epoch) const { return starts_.at(epoch); }
  // Last index of `epoch` in a log whose last index is `last`.
  uint64_t EndOf(int64_t epoch, uint64_t last) const;
  // The epoch of the entry at `index`, or 0 when no epoch covers it.
  int64_t EpochAt(uint64_t index) const;
  const std::map<int64_t, uint64_t>& starts() const { return starts_; }

 private:
  std::map<int64_t, uint64_t> starts_;
};

class ReplicaLog {
 public:
  virtual ~ReplicaLog() = default;

  // The highest epoch persisted (0 for a new log).
  virtual int64_t highest_epoch() const = 0;
  // Persists `epoch` when above highest_epoch(); durable when it returns.
  virtual Status RaiseEpoch(int64_t epoch) = 0;

  // The last entry appended (durable or not), and the last one Sync made
  // durable.
  virtual EntryRef last() const = 0;
  virtual EntryRef durable() const = 0;
  virtual const EpochTable& epochs() const = 0;

  // Appends `entry` after last(): its index must be last().index + 1, its
  // epoch at least the last entry's, its crc the chain crc (the caller
  // computed or received it; a mismatch is kCorruption and nothing is
  // written). Not durable until Sync.
  virtual Status Append(const ReplicaEntry& entry) = 0;
  // Makes every appended entry durable (one fdatasync per file touched).
  // On failure the entries appended since the last good Sync are dropped
  // (last() goes back to durable()): their pages may be lost, and a later
  // sync would not say so.
  virtual Status Sync() = 0;
  // Drops every entry after index `keep` (durably: a restart does not see
  // them again). kInvalidArgument when keep > last().index.
  virtual Status TruncateAfter(uint64_t keep) = 0;

  // The entry at `index` (1 .. last().index); kNotFound otherwise.
  virtual Result<ReplicaEntry> Read(uint64_t index) const = 0;
  // The same in place, without a copy: the payload is valid until the log
  // next changes (an append or a truncation).
  virtual Result<EntryView> View(uint64_t index) const = 0;
  // The chain crc of the entry at `index` (0 for index 0); none past the
  // end.
  virtual std::optional<uint32_t> CrcAt(uint64_t index) const = 0;
};

}  // namespace txmq::cluster
