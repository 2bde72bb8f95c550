#include "broker/src/cluster/group_config.h"

#include <nlohmann/json.hpp>

namespace txmq::cluster {

namespace {

std::string Encode(const GroupConfig& c) {
  return nlohmann::json{{"segment_bytes", c.segment_bytes}}.dump();
}

Result<GroupConfig> Decode(const std::string& key, const std::string& text) {
  auto json = nlohmann::json::parse(text, nullptr, false);
  if (!json.is_object() || !json.contains("segment_bytes") ||
      !json["segment_bytes"].is_number_unsigned()) {
    return Status::Corruption("group config " + key + " is not {\"segment_bytes\": N}: " + text);
  }
  return GroupConfig{.segment_bytes = json["segment_bytes"].get<uint64_t>()};
}

std::string Mib(uint64_t bytes) { return std::to_string(bytes >> 20) + " MiB"; }

}  // namespace

std::string GroupConfigKey(const std::string& cluster, const std::string& group) {
  return "/txmq/" + cluster + "/groups/" + group + "/config";
}

Status AgreeOnGroupConfig(Coordinator& coordinator, const std::string& cluster,
                          const std::string& group, const GroupConfig& mine) {
  const std::string key = GroupConfigKey(cluster, group);
  Txn first;
  first.compares = {Compare::Absent(key)};
  first.on_success = {WriteOp::Put(key, Encode(mine))};
  auto created = coordinator.Commit(first);
  if (!created.ok()) return created.status();
  if (created->succeeded) return Status::OK();
  auto read = coordinator.Get(key);
  if (!read.ok()) return read.status();
  if (read->kvs.empty()) return Status::Unavailable("group config " + key + " vanished; ask again");
  auto theirs = Decode(key, read->kvs.front().value);
  if (!theirs.ok()) return theirs.status();
  if (theirs->segment_bytes != mine.segment_bytes) {
    return Status::FailedPrecondition(
        "--segment-mb: this node cuts its log into segments of " + Mib(mine.segment_bytes) +
        ", group " + group + " into " + Mib(theirs->segment_bytes) + " (" + key +
        ", written by its first node). Every node of a group must use the same size, or a "
        "replica would place records where the leader did not; start this node with "
        "--segment-mb " +
        std::to_string(theirs->segment_bytes >> 20));
  }
  return Status::OK();
}

}  // namespace txmq::cluster
