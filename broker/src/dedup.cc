#include "broker/src/dedup.h"

#include <algorithm>
#include <memory>

#include "protocol/src/log.h"
#include "protocol/src/util.h"

namespace txmq::broker {

namespace {

constexpr int kProbes = 7;
constexpr size_t kBitsPerEntry = 10;
constexpr size_t kFilterCapacity = 64 * 1024;

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

uint64_t DedupHash(std::string_view message_id) { return Mix(StableHash(message_id)); }

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

DedupWindow::DedupWindow(Core& core, TopicManager& topics) : core_(core), topics_(topics) {
  const auto window_ms = static_cast<uint64_t>(core.options().dedup_window.count());
  const auto bucket_ms = static_cast<uint64_t>(storage::store::kIdBucketMs);
  // Enough buckets that an entry stays findable for the whole window.
  live_buckets_ = (window_ms + bucket_ms - 1) / bucket_ms + 1;
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
  size_t loaded = 0;
  Status s = core_.store().ForEachId(OldestLive(now), [&](uint64_t bucket, std::string_view id) {
    AddToFilter(bucket, DedupHash(id));
    ++loaded;
    return true;
  });
  if (!s.ok()) return s;
  Logger("broker")->info("dedup window: {} message ids from the last {}", loaded,
                         FormatDurationMs(core_.options().dedup_window.count()));
  return Status::OK();
}

std::optional<DedupWindow::Hit> DedupWindow::Find(std::string_view message_id) {
  if (auto it = in_flight_.find(std::string(message_id)); it != in_flight_.end()) {
    return Hit{it->second, false};
  }
  const uint64_t hash = DedupHash(message_id);
  const uint64_t oldest = OldestLive(core_.NowMs());
  for (auto b = buckets_.rbegin(); b != buckets_.rend() && b->index >= oldest; ++b) {
    bool maybe = false;
    for (const auto& f : b->filters) maybe = maybe || f.MayContain(hash);
    if (!maybe) continue;
    auto entry = core_.store().GetId(b->index, message_id);
    if (!entry) continue;  // a false positive
    // Buckets are a minute wide; the window is exact.
    if (entry->stored_ms < core_.NowMs() - core_.options().dedup_window.count()) continue;
    const TopicState* topic = topics_.FindById(entry->topic_id);
    if (topic == nullptr) continue;
    Hit hit;
    hit.first.stored_ms = entry->stored_ms;
    hit.first.topic = topic->name;
    hit.first.queue = entry->queue;
    hit.first.has_offset = entry->has_offset;
    hit.first.offset = entry->offset;
    return hit;
  }
  return std::nullopt;
}

void DedupWindow::Remember(std::string_view message_id, const storage::DedupRecord& record) {
  AddToFilter(BucketOf(record.stored_ms), DedupHash(message_id));
  in_flight_[std::string(message_id)] = record;
}

void DedupWindow::Cleanup(int64_t now_ms) {
  const uint64_t oldest = OldestLive(now_ms);
  while (!buckets_.empty() && buckets_.front().index < oldest) buckets_.pop_front();
}

}  // namespace txmq::broker
