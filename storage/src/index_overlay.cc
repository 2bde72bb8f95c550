#include "storage/src/index_overlay.h"

#include "storage/src/store_format.h"

namespace txmq::storage {

bool IndexOverlay::Holds(std::string_view key) {
  if (key.empty()) return false;
  switch (key[0]) {
    case store::kHalfRef:
    case store::kCheck:
    case store::kTx:
      return true;
    default:
      return false;
  }
}

std::optional<bool> IndexOverlay::AfterSealed(std::string_view key) const {
  auto it = sealed_.find(key);
  if (it == sealed_.end()) return std::nullopt;
  return it->second.value.has_value();
}

void IndexOverlay::Put(std::string_view key, std::string_view value, bool is_new) {
  std::lock_guard<std::mutex> lock(mu_);
  bytes_ += value.size();
  if (auto it = current_.find(key); it != current_.end()) {
    it->second.value = std::string(value);  // what LevelDB may hold is unchanged
    return;
  }
  bytes_ += key.size() + kEntryOverhead;
  const std::optional<bool> after = AfterSealed(key);
  current_.emplace(std::string(key), Value{std::string(value), after ? *after : !is_new});
}

void IndexOverlay::Delete(std::string_view key) {
  std::lock_guard<std::mutex> lock(mu_);
  if (auto it = current_.find(key); it != current_.end()) {
    if (!it->second.index_may_hold) {
      if (it->second.value) ++stats_.dropped;
      current_.erase(it);
      return;
    }
    it->second.value.reset();
    return;
  }
  if (AfterSealed(key) == false) return;  // the sealed batch deletes it already
  bytes_ += key.size() + kEntryOverhead;
  current_.emplace(std::string(key), Value{std::nullopt, true});
}

IndexOverlay::Found IndexOverlay::Get(std::string_view key, std::string* value) const {
  std::lock_guard<std::mutex> lock(mu_);
  for (const Map* map : {&current_, &sealed_}) {
    if (auto it = map->find(key); it != map->end()) {
      if (!it->second.value) return Found::kDeleted;
      *value = *it->second.value;
      return Found::kValue;
    }
  }
  return Found::kNotHere;
}

std::vector<IndexOverlay::Entry> IndexOverlay::Range(std::string_view from,
                                                     std::string_view end) const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<Entry> out;
  auto a = current_.lower_bound(from), b = sealed_.lower_bound(from);
  const auto before_end = [&](const Map::const_iterator& it, const Map& map) {
    return it != map.end() && (end.empty() || it->first < end);
  };
  while (before_end(a, current_) || before_end(b, sealed_)) {
    // current_ is newer: on the same key it wins.
    if (before_end(a, current_) && (!before_end(b, sealed_) || a->first <= b->first)) {
      if (before_end(b, sealed_) && b->first == a->first) ++b;
      out.emplace_back(a->first, a->second.value);
      ++a;
    } else {
      out.emplace_back(b->first, b->second.value);
      ++b;
    }
  }
  return out;
}

std::vector<leveldb::WriteBatch> IndexOverlay::Seal(size_t batch_bytes) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    // sealed_ is empty unless its write failed: then it is written again,
    // with the newer operations over it.
    for (auto& [key, v] : current_) sealed_.insert_or_assign(key, std::move(v));
    current_.clear();
    bytes_ = 0;
    stats_.written += sealed_.size();
  }
  // sealed_ changes only in DropSealed, on this thread: read it unlocked.
  std::vector<leveldb::WriteBatch> batches;
  size_t in_last = 0;
  for (const auto& [key, v] : sealed_) {
    if (batches.empty() || in_last >= batch_bytes) {
      batches.emplace_back();
      in_last = 0;
    }
    if (v.value) {
      batches.back().Put(key, *v.value);
    } else {
      batches.back().Delete(key);
    }
    in_last += key.size() + (v.value ? v.value->size() : 0);
  }
  return batches;
}

void IndexOverlay::DropSealed() {
  std::lock_guard<std::mutex> lock(mu_);
  sealed_.clear();
}

size_t IndexOverlay::bytes() const {
  std::lock_guard<std::mutex> lock(mu_);
  return bytes_;
}

IndexOverlay::Stats IndexOverlay::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

}  // namespace txmq::storage
