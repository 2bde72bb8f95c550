// The dedup window: a message id stored within the window (by a send, or
// by a committed transaction) is answered with its first result instead of
// being stored twice. Windows and buckets count broker time (clock.h).
//
// Entries live in LevelDB ('d' keys, grouped in time buckets so expiry
// deletes whole ranges in order), so the window survives restarts. Memory
// holds one Bloom filter per live bucket, so a new id (the common case) is
// refused without touching LevelDB; a filter hit is confirmed with a Get.
// Ids whose first write is not durable yet are kept exactly in memory.
#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "broker/src/core.h"
#include "storage/src/records.h"

namespace txmq::broker {

// A classic Bloom filter with 10 bits and 7 probes per expected entry
// (about 1% false positives at capacity).
class BloomFilter {
 public:
  explicit BloomFilter(size_t capacity);
  void Add(uint64_t hash);
  bool MayContain(uint64_t hash) const;
  bool full() const { return count_ >= capacity_; }

 private:
  std::vector<uint64_t> bits_;
  size_t capacity_;
  size_t count_ = 0;
};

class DedupWindow {
 public:
  explicit DedupWindow(Core& core);

  // Rebuilds the filters from the entries still inside the window.
  Status Recover();

  struct Hit {
    storage::DedupRecord first;
    bool durable = true;  // false: the first write is in a round not yet on disk
  };
  std::optional<Hit> Find(std::string_view message_id);

  // Records `message_id` in the open round. The caller calls Settled(id)
  // when that round is durable (its own completion runs then anyway).
  void Remember(std::string_view message_id, const storage::DedupRecord& record);
  void Settled(const std::string& message_id) { in_flight_.erase(message_id); }

  // Deletes up to `budget` expired entries; true when more are left.
  bool Cleanup(int64_t now_ms, uint32_t budget);

  uint64_t bucket_ms() const { return bucket_ms_; }

 private:
  struct Bucket {
    uint64_t index = 0;
    std::vector<BloomFilter> filters;  // a new one is added when the last is full
  };

  uint64_t BucketOf(int64_t ms) const { return static_cast<uint64_t>(ms) / bucket_ms_; }
  // Oldest bucket still inside the window.
  uint64_t OldestLive(int64_t now_ms) const;
  Bucket& BucketFor(uint64_t index);
  void AddToFilter(uint64_t bucket, uint64_t hash);

  Core& core_;
  uint64_t bucket_ms_;
  uint64_t live_buckets_;
  std::deque<Bucket> buckets_;  // ascending index
  std::unordered_map<std::string, storage::DedupRecord> in_flight_;
};

}  // namespace txmq::broker
