#include "txmq/properties.h"

#include <array>

namespace txmq::property {

namespace {

// Stamped by the client libraries; a user setting one is refused.
constexpr std::array<std::string_view, 6> kLibraryStamped = {
    kTransactionId, kProducerGroup, kOriginalId, kOriginalTopic, kConsumerGroup, kReason};

}  // namespace

bool IsUserSettable(std::string_view name) { return name == kCompensateTo; }

bool IsClientStamped(std::string_view name) {
  if (IsUserSettable(name)) return true;
  for (std::string_view n : kLibraryStamped) {
    if (name == n) return true;
  }
  return false;
}

Status CheckUserProperties(const Properties& properties) {
  // Reserved names sort together ("txmq." is a prefix), so only they are
  // looked at.
  for (auto it = properties.lower_bound(std::string(kReservedPrefix));
       it != properties.end() && IsReserved(it->first); ++it) {
    if (IsUserSettable(it->first)) continue;
    return Status::InvalidArgument(
        "property '" + it->first.substr(0, 64) + "' is reserved: names starting with '" +
        std::string(kReservedPrefix) + "' belong to txmq, and the only one you may set is '" +
        kCompensateTo + "'");
  }
  return Status::OK();
}

size_t CountedBytes(const Message& message) {
  size_t n = message.body.size() + message.key.size();
  for (const auto& [k, v] : message.properties) {
    if (!IsReserved(k)) n += k.size() + v.size();
  }
  return n;
}

const std::string* Find(const Properties& properties, std::string_view name) {
  if (auto it = properties.find(std::string(name)); it != properties.end()) return &it->second;
  if (!IsReserved(name)) return nullptr;
  // "txmq.tx" was "txmq-tx" in 0.1.
  std::string legacy(name);
  legacy[kReservedPrefix.size() - 1] = '-';
  if (auto it = properties.find(legacy); it != properties.end()) return &it->second;
  return nullptr;
}

}  // namespace txmq::property
