#include "broker/src/dedup.h"

#include <algorithm>
#include <memory>

#include "protocol/src/fmix64.h"
#include "protocol/src/log.h"
#include "protocol/src/util.h"

namespace txmq::broker {

namespace {

constexpr int kProbes = 10;
constexpr size_t kBlockWords = 8;  // 512 bits: one cache line
constexpr size_t kBitsPerEntry = 14;
constexpr size_t kFirstFilterCapacity = 64 * 1024;
constexpr size_t kMaxFilterCapacity = 16 * 1024 * 1024;  // 20 MB of bits

}  // namespace

uint64_t DedupHash(std::string_view message_id) { return Fmix64(StableHash(message_id)); }

BloomFilter::BloomFilter(size_t capacity)
    : bits_(((capacity * kBitsPerEntry + 511) / 512) * kBlockWords, 0), capacity_(capacity) {}

namespace {
// Where an entry's probes go: one block of kBlockWords words (a cache line,
// so a lookup costs one miss per filter), chosen by the hash (a multiply
// maps it onto the blocks), and kProbes bits inside it, 9 bits of two more
// hashes each.
class Probes {
 public:
  Probes(uint64_t hash, size_t blocks)
      : block_(static_cast<size_t>((static_cast<unsigned __int128>(hash) * blocks) >> 64)),
        bits_{Fmix64(hash ^ 0x9e3779b97f4a7c15ull), Fmix64(hash ^ 0xc2b2ae3d27d4eb4full)} {}
  size_t block() const { return block_; }
  // The i-th probe's bit in the block, 0..511.
  uint64_t Bit(int i) const { return (bits_[i / 7] >> (9 * (i % 7))) & 511; }

 private:
  size_t block_;
  uint64_t bits_[2];
};
static_assert(kProbes <= 14, "two 64-bit hashes give 14 probes of 9 bits");
}  // namespace

void BloomFilter::Add(uint64_t hash) {
  const Probes p(hash, bits_.size() / kBlockWords);
  uint64_t* words = &bits_[p.block() * kBlockWords];
  for (int i = 0; i < kProbes; ++i) words[p.Bit(i) / 64] |= uint64_t{1} << (p.Bit(i) % 64);
  ++count_;
}

bool BloomFilter::MayContain(uint64_t hash) const {
  const Probes p(hash, bits_.size() / kBlockWords);
  const uint64_t* words = &bits_[p.block() * kBlockWords];
  for (int i = 0; i < kProbes; ++i) {
    if ((words[p.Bit(i) / 64] & (uint64_t{1} << (p.Bit(i) % 64))) == 0) return false;
  }
  return true;
}

void BloomFilter::Prefetch(uint64_t hash) const {
  const Probes p(hash, bits_.size() / kBlockWords);
  __builtin_prefetch(&bits_[p.block() * kBlockWords]);
}

void GrowingBloomFilter::Add(uint64_t hash) {
  if (filters_.empty() || filters_.back().full()) {
    const size_t capacity = filters_.empty()
                                ? std::max(kFirstFilterCapacity, expected_ + expected_ / 4)
                                : filters_.back().capacity() * 2;
    filters_.emplace_back(std::min(capacity, kMaxFilterCapacity));
  }
  filters_.back().Add(hash);
}

void GrowingBloomFilter::Prefetch(uint64_t hash) const {
  for (const auto& f : filters_) f.Prefetch(hash);
}

size_t GrowingBloomFilter::count() const {
  size_t n = 0;
  for (const auto& f : filters_) n += f.count();
  return n;
}

bool GrowingBloomFilter::MayContain(uint64_t hash) const {
  // Newest (largest) first: it holds more than all the others together.
  for (auto f = filters_.rbegin(); f != filters_.rend(); ++f) {
    if (f->MayContain(hash)) return true;
  }
  return false;
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
    // Sized for what the previous minute took: one filter at a steady rate.
    const size_t expected = buckets_.empty() ? 0 : buckets_.back().filter.count();
    buckets_.push_back(Bucket{index, GrowingBloomFilter(expected)});
    return buckets_.back();
  }
  for (auto& b : buckets_) {  // recovery may see buckets out of order
    if (b.index == index) return b;
  }
  auto pos = std::find_if(buckets_.begin(), buckets_.end(),
                          [&](const Bucket& b) { return b.index > index; });
  return *buckets_.insert(pos, Bucket{index, GrowingBloomFilter()});
}

void DedupWindow::AddToFilter(uint64_t bucket, uint64_t hash) {
  BucketFor(bucket).filter.Add(hash);
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
    b->filter.Prefetch(hash);
  }
  for (auto b = buckets_.rbegin(); b != buckets_.rend() && b->index >= oldest; ++b) {
    if (!b->filter.MayContain(hash)) continue;
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
