#include "broker/src/cluster/replica_log.h"

#include <cstring>

#include "storage/src/crc32c.h"

namespace txmq::cluster {

uint32_t ChainCrc(uint32_t prev_crc, int64_t epoch, uint64_t index, std::string_view payload) {
  namespace crc32c = storage::crc32c;
  // Little-endian (the only byte order txmq builds for), fixed widths.
  char head[20];
  std::memcpy(head, &prev_crc, 4);
  std::memcpy(head + 4, &epoch, 8);
  std::memcpy(head + 12, &index, 8);
  uint32_t crc = crc32c::Value(head, sizeof head);
  return crc32c::Mask(crc32c::Extend(crc, payload.data(), payload.size()));
}

void EpochTable::Append(int64_t epoch, uint64_t index) {
  if (starts_.empty() || starts_.rbegin()->first < epoch) starts_.emplace(epoch, index);
}

void EpochTable::TruncateAfter(uint64_t last) {
  while (!starts_.empty() && starts_.rbegin()->second > last)
    starts_.erase(std::prev(starts_.end()));
}

std::optional<int64_t> EpochTable::FloorEpoch(int64_t epoch) const {
  auto it = starts_.upper_bound(epoch);
  if (it == starts_.begin()) return std::nullopt;
  return std::prev(it)->first;
}

uint64_t EpochTable::EndOf(int64_t epoch, uint64_t last) const {
  auto next = starts_.upper_bound(epoch);
  return next == starts_.end() ? last : next->second - 1;
}

int64_t EpochTable::EpochAt(uint64_t index) const {
  int64_t found = 0;
  for (const auto& [epoch, start] : starts_) {
    if (start > index) break;
    found = epoch;
  }
  return found;
}

}  // namespace txmq::cluster
