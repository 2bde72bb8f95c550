#include "storage/src/store_round.h"

#include <algorithm>

#include "storage/src/coding.h"

namespace txmq::storage {

void Round::Put(std::string_view key, std::string_view value) {
  ops_.push_back(static_cast<char>(store::kPut));
  PutLengthPrefixed(&ops_, key);
  PutLengthPrefixed(&ops_, value);
}

void Round::Delete(std::string_view key) {
  ops_.push_back(static_cast<char>(store::kDelete));
  PutLengthPrefixed(&ops_, key);
}

void Round::Seal(int64_t time_ms, uint64_t epoch) {
  ops_record_.clear();
  if (!ops_.empty()) store::AppendIndexOpsRecord(ops_, &ops_record_);
  std::sort(new_keys_.begin(), new_keys_.end());
  entry_ = PendingEntry{};
  entry_.epoch = epoch;
  entry_.time_ms = time_ms;
  if (!records_.empty()) entry_.Add(records_.data(), records_.size());
  if (!ops_record_.empty()) entry_.Add(ops_record_.data(), ops_record_.size());
}

void Round::SealReplicated(int64_t time_ms, uint64_t epoch, std::string records,
                           std::string ops_record) {
  records_ = std::move(records);
  ops_.clear();
  ops_record_ = std::move(ops_record);
  entry_ = PendingEntry{};
  entry_.epoch = epoch;
  entry_.time_ms = time_ms;
  if (!records_.empty()) entry_.Add(records_.data(), records_.size());
  if (!ops_record_.empty()) entry_.Add(ops_record_.data(), ops_record_.size());
}

void Round::Complete() {
  for (auto& fn : completions_) fn(status_);
  completions_.clear();
}

}  // namespace txmq::storage
