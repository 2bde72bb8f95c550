#include "broker/src/dedup.h"

#include <algorithm>
#include <memory>

#include "protocol/src/log.h"
#include "protocol/src/util.h"
#include "storage/src/keys.h"

namespace txmq::broker {

namespace keys = storage::keys;

namespace {

constexpr int kProbes = 7;
constexpr size_t kBitsPerEntry = 10;
constexpr size_t kFilterCapacity = 64 * 1024;
constexpr uint64_t kBuckets = 8;  // the window is split into this many buckets

// Spreads FNV's bits before they pick Bloom probes (murmur3's finalizer).
uint64_t Mix(uint64_t h) {
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdull;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ull;
  h ^= h >> 33;
  return h;
}

}  // namespace

BloomFilter::BloomFilter(size_t capacity)
    : bits_((capacity * kBitsPerEntry + 63) / 64, 0), capacity_(capacity) {}

void BloomFilter::Add(uint64_t hash) {
  const uint64_t nbits = bits_.size() * 64;
  uint64_t h1 = hash, h2 = (hash >> 32) | 1;
  for (int i = 0; i < kProbes; ++i) {
    uint64_t bit = (h1 + i * h2) % nbits;
    bits_[bit / 64] |= uint64_t{1} << (bit % 64);
  }
  ++count_;
}

bool BloomFilter::MayContain(uint64_t hash) const {
  const uint64_t nbits = bits_.size() * 64;
  uint64_t h1 = hash, h2 = (hash >> 32) | 1;
  for (int i = 0; i < kProbes; ++i) {
    uint64_t bit = (h1 + i * h2) % nbits;
    if ((bits_[bit / 64] & (uint64_t{1} << (bit % 64))) == 0) return false;
  }
  return true;
}

DedupWindow::DedupWindow(Core& core) : core_(core) {
  const auto window_ms = static_cast<uint64_t>(core.options().dedup_window.count());
  bucket_ms_ = std::max<uint64_t>(1000, window_ms / kBuckets);
  // Enough buckets that an entry stays findable for the whole window.
  live_buckets_ = (window_ms + bucket_ms_ - 1) / bucket_ms_ + 1;
}

uint64_t DedupWindow::OldestLive(int64_t now_ms) const {
  uint64_t now = BucketOf(now_ms);
  return now >= live_buckets_ ? now - live_buckets_ + 1 : 0;
}

DedupWindow::Bucket& DedupWindow::BucketFor(uint64_t index) {
  if (buckets_.empty() || buckets_.back().index < index) {
    buckets_.push_back(Bucket{index, {}});
    return buckets_.back();
  }
  for (auto& b : buckets_) {  // recovery may see buckets out of order
    if (b.index == index) return b;
  }
  auto pos = std::find_if(buckets_.begin(), buckets_.end(),
                          [&](const Bucket& b) { return b.index > index; });
  return *buckets_.insert(pos, Bucket{index, {}});
}

void DedupWindow::AddToFilter(uint64_t bucket, uint64_t hash) {
  Bucket& b = BucketFor(bucket);
  if (b.filters.empty() || b.filters.back().full()) b.filters.emplace_back(kFilterCapacity);
  b.filters.back().Add(hash);
}

Status DedupWindow::Recover() {
  const int64_t now = core_.NowMs();
  std::unique_ptr<leveldb::Iterator> it(core_.db()->NewIterator(leveldb::ReadOptions()));
  const std::string prefix(1, keys::kDedup);
  size_t loaded = 0;
  for (it->Seek(keys::DedupBucketPrefix(OldestLive(now)));
       it->Valid() && it->key().starts_with(prefix); it->Next()) {
    uint64_t bucket;
    std::string_view id;
    std::string key = it->key().ToString();
    if (!keys::ParseDedup(key, &bucket, &id)) {
      return Status::Corruption("bad dedup key of " + std::to_string(key.size()) + " bytes");
    }
    AddToFilter(bucket, Mix(StableHash(id)));
    ++loaded;
  }
  Logger("broker")->info("dedup window: {} message ids from the last {}", loaded,
                         FormatDurationMs(core_.options().dedup_window.count()));
  return Status::OK();
}

std::optional<DedupWindow::Hit> DedupWindow::Find(std::string_view message_id) {
  if (auto it = in_flight_.find(std::string(message_id)); it != in_flight_.end()) {
    return Hit{it->second, false};
  }
  const uint64_t hash = Mix(StableHash(message_id));
  const uint64_t oldest = OldestLive(core_.NowMs());
  for (auto b = buckets_.rbegin(); b != buckets_.rend() && b->index >= oldest; ++b) {
    bool maybe = false;
    for (const auto& f : b->filters) maybe = maybe || f.MayContain(hash);
    if (!maybe) continue;
    std::string value;
    if (!core_.db()->Get(leveldb::ReadOptions(), keys::Dedup(b->index, message_id), &value).ok()) {
      continue;  // a false positive
    }
    Hit hit;
    if (storage::DecodeDedup(value, &hit.first)) return hit;
  }
  return std::nullopt;
}

void DedupWindow::Remember(std::string_view message_id, const storage::DedupRecord& record) {
  const uint64_t bucket = BucketOf(record.stored_ms);
  core_.batch().Put(keys::Dedup(bucket, message_id), storage::EncodeDedup(record));
  AddToFilter(bucket, Mix(StableHash(message_id)));
  in_flight_[std::string(message_id)] = record;
}

bool DedupWindow::Cleanup(int64_t now_ms, uint32_t budget) {
  const uint64_t oldest = OldestLive(now_ms);
  while (!buckets_.empty() && buckets_.front().index < oldest) buckets_.pop_front();

  const std::string end = keys::DedupBucketPrefix(oldest);
  std::unique_ptr<leveldb::Iterator> it(core_.db()->NewIterator(leveldb::ReadOptions()));
  uint32_t deleted = 0;
  for (it->Seek(std::string(1, keys::kDedup)); it->Valid() && deleted < budget; it->Next()) {
    if (it->key().compare(end) >= 0) break;
    core_.batch().Delete(it->key());
    ++deleted;
  }
  return deleted >= budget;
}

}  // namespace txmq::broker
