// The dedup window: a message id stored within the window (by a send, or
// by a committed transaction) is answered with its first result instead of
// being stored twice. Windows and buckets count broker time (clock.h).
//
// The store indexes every message (outside the broker's own topics) by id
// in one-minute buckets, derived from the message record itself, so the
// window survives restarts and costs no extra write. Memory holds Bloom
// filters per live bucket, so a new id (the common case) is refused
// without touching the index; a filter hit is confirmed with a lookup.
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
#include "broker/src/topics.h"
#include "storage/src/records.h"

namespace txmq::broker {

// The hash a message id is filed under in the dedup filters: FNV-1a
// (StableHash), its bits spread by murmur3's finalizer.
uint64_t DedupHash(std::string_view message_id);

// A classic Bloom filter with 14 bits and 10 probes per expected entry
// in one cache line (about 0.2% false positives at capacity: each one costs
// an index read).
class BloomFilter {
 public:
  explicit BloomFilter(size_t capacity);
  void Add(uint64_t hash);
  bool MayContain(uint64_t hash) const;
  // Starts loading the one cache line MayContain(hash) reads, so that the
  // lookups of many filters wait for memory together, not one by one.
  void Prefetch(uint64_t hash) const;
  bool full() const { return count_ >= capacity_; }
  size_t capacity() const { return capacity_; }
  size_t count() const { return count_; }

 private:
  std::vector<uint64_t> bits_;
  size_t capacity_;
  size_t count_ = 0;
};

// The ids of one time bucket: Bloom filters of doubling capacity (a new one
// when the last is full), the first sized by `expected` (the previous
// bucket's count), so a bucket has one or two filters at a steady rate and
// about log2(n / 64k) at worst. A lookup that finds nothing, which is almost
// every send, asks every filter of every live bucket; with filters of one
// fixed size that cost grew with the ids in the window, and so did the time
// of a send.
class GrowingBloomFilter {
 public:
  explicit GrowingBloomFilter(size_t expected = 0) : expected_(expected) {}
  void Add(uint64_t hash);
  bool MayContain(uint64_t hash) const;
  void Prefetch(uint64_t hash) const;
  size_t filters() const { return filters_.size(); }
  size_t count() const;

 private:
  size_t expected_;
  std::vector<BloomFilter> filters_;
};

class DedupWindow {
 public:
  DedupWindow(Core& core, TopicManager& topics);

  // Rebuilds the filters from the entries still inside the window.
  Status Recover();

  struct Hit {
    storage::DedupRecord first;
    bool durable = true;  // false: the first write is in a round not yet on disk
  };
  std::optional<Hit> Find(std::string_view message_id);

  // Notes `message_id`, stored in the open round (the store indexes it by
  // itself). The caller calls Settled(id) when that round is durable.
  void Remember(std::string_view message_id, const storage::DedupRecord& record);
  void Settled(const std::string& message_id) { in_flight_.erase(message_id); }

  // Forgets the filters of buckets that left the window.
  void Cleanup(int64_t now_ms);

 private:
  struct Bucket {
    uint64_t index = 0;
    GrowingBloomFilter filter;
  };

  static uint64_t BucketOf(int64_t ms) {
    return static_cast<uint64_t>(ms) / storage::store::kIdBucketMs;
  }
  // Oldest bucket still inside the window.
  uint64_t OldestLive(int64_t now_ms) const;
  Bucket& BucketFor(uint64_t index);
  void AddToFilter(uint64_t bucket, uint64_t hash);

  Core& core_;
  TopicManager& topics_;
  uint64_t live_buckets_;
  std::deque<Bucket> buckets_;  // ascending index
  std::unordered_map<std::string, storage::DedupRecord> in_flight_;
};

}  // namespace txmq::broker
