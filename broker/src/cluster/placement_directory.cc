#include "broker/src/cluster/placement_directory.h"

#include <charconv>
#include <map>
#include <string_view>

namespace txmq::cluster {

namespace {

std::string GroupsPrefix(const std::string& cluster) { return "/txmq/" + cluster + "/groups/"; }
std::string BrokersPrefix(const std::string& cluster) { return "/txmq/" + cluster + "/brokers/"; }

// "<group>" of prefix + "<group>" + suffix (".../groups/<group>/state");
// "" for any other key under the prefix.
std::string GroupOfKey(std::string_view key, std::string_view prefix, std::string_view suffix) {
  if (key.size() <= prefix.size() + suffix.size() || !key.ends_with(suffix)) return "";
  std::string_view group = key.substr(prefix.size(), key.size() - prefix.size() - suffix.size());
  if (group.find('/') != std::string_view::npos) return "";
  return std::string(group);
}

std::string GroupOfStateKey(std::string_view key, std::string_view prefix) {
  return GroupOfKey(key, prefix, "/state");
}

// A stored weight, or 0 when the text is not one in range.
uint32_t ParseWeight(std::string_view text) {
  uint32_t weight = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), weight);
  if (ec != std::errc() || end != text.data() + text.size()) return 0;
  return weight <= kMaxGroupWeight ? weight : 0;
}

Result<std::optional<TopicPlacement>> ReadPlacement(Coordinator& coordinator,
                                                    const std::string& key) {
  auto read = coordinator.Get(key);
  if (!read.ok()) return read.status();
  if (read->kvs.empty()) return std::optional<TopicPlacement>();
  auto placement = DecodeTopicPlacement(read->kvs.front().value);
  if (!placement.ok()) return Status::Corruption(key + ": " + placement.status().message());
  return std::optional<TopicPlacement>(std::move(*placement));
}

bool ParseUint(std::string_view text, uint32_t* out) {
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), *out);
  return ec == std::errc() && end == text.data() + text.size() && !text.empty();
}

}  // namespace

Result<std::vector<GroupWeight>> ListGroups(Coordinator& coordinator, const std::string& cluster) {
  const std::string prefix = GroupsPrefix(cluster);
  auto read = coordinator.GetPrefix(prefix);
  if (!read.ok()) return read.status();
  std::vector<GroupWeight> groups;  // kvs come sorted by key, so by group
  std::map<std::string, uint32_t, std::less<>> weights;
  for (const KeyValue& kv : read->kvs) {
    if (std::string group = GroupOfStateKey(kv.key, prefix); !group.empty()) {
      groups.push_back({std::move(group), 1});
    } else if (std::string weighed = GroupOfKey(kv.key, prefix, "/weight"); !weighed.empty()) {
      // One unreadable record must not stop every placement: weight 1.
      if (uint32_t w = ParseWeight(kv.value); w != 0) weights[weighed] = w;
    }
  }
  for (GroupWeight& g : groups) {
    if (auto it = weights.find(g.group); it != weights.end()) g.weight = it->second;
  }
  return groups;
}

std::string GroupWeightKey(const std::string& cluster, const std::string& group) {
  return GroupsPrefix(cluster) + group + "/weight";
}

Result<uint32_t> PublishGroupWeight(Coordinator& coordinator, const std::string& cluster,
                                    const std::string& group, uint32_t weight) {
  if (weight == 0 || weight > kMaxGroupWeight) {
    return Status::InvalidArgument("group weight " + std::to_string(weight) + ": must be 1 to " +
                                   std::to_string(kMaxGroupWeight));
  }
  const std::string key = GroupWeightKey(cluster, group);
  auto read = coordinator.Get(key);
  if (!read.ok()) return read.status();
  const uint32_t before = read->kvs.empty() ? 0 : ParseWeight(read->kvs.front().value);
  if (before == weight) return before;
  if (auto put = coordinator.Put(key, std::to_string(weight)); !put.ok()) return put.status();
  return before;
}

Result<TopicPlacement> EnsurePlacement(Coordinator& coordinator, const std::string& cluster,
                                       const std::string& topic, uint32_t queue_count) {
  const std::string key = PlacementKey(cluster, topic);
  auto stored = ReadPlacement(coordinator, key);
  if (!stored.ok()) return stored.status();
  if (stored->has_value()) return std::move(**stored);

  auto groups = ListGroups(coordinator, cluster);
  if (!groups.ok()) return groups.status();
  if (groups->empty()) {
    return Status::FailedPrecondition("cluster " + cluster + " has no broker group yet (no " +
                                      GroupsPrefix(cluster) + "<group>/state): topic " + topic +
                                      " cannot be placed");
  }
  auto placement = PlaceQueues(topic, queue_count, *groups);
  if (!placement.ok()) return placement.status();

  Txn create;
  create.compares = {Compare::Absent(key)};
  create.on_success = {WriteOp::Put(key, EncodeTopicPlacement(*placement))};
  auto written = coordinator.Commit(create);
  // A timeout may have written it: the read below says.
  if (!written.ok() && written.status().code() != StatusCode::kTimeout) return written.status();
  if (written.ok() && written->succeeded) return std::move(*placement);

  // Another writer's placement (or ours, if the timed-out write landed).
  stored = ReadPlacement(coordinator, key);
  if (!stored.ok()) return stored.status();
  if (!stored->has_value()) {
    return written.ok() ? Status::Unavailable(key + " was created and deleted meanwhile; ask again")
                        : written.status();
  }
  return std::move(**stored);
}

ClusterMap::QueueRoute ClusterMap::Route(const std::string& topic, uint32_t queue) const {
  auto t = topics.find(topic);
  if (t == topics.end() || queue >= t->second.groups.size()) return {};
  const std::string& group = t->second.groups[queue];
  auto g = groups.find(group);
  return {&group, g == groups.end() ? nullptr : &g->second};
}

Result<ClusterMap> ReadClusterMap(Coordinator& coordinator, const std::string& cluster) {
  ClusterMap map;
  const std::string groups_prefix = GroupsPrefix(cluster);
  auto groups = coordinator.GetPrefix(groups_prefix);
  if (!groups.ok()) return groups.status();
  auto brokers = coordinator.GetPrefix(BrokersPrefix(cluster));
  if (!brokers.ok()) return brokers.status();
  // Drain reports before placements (two reads, two revisions): a move
  // landing between them then shows as a placement newer than the reports
  // (its new generation not reported yet: held, as it should be), never
  // as an older placement whose report the move deleted.
  const std::string drain_prefix = DrainPrefix(cluster);
  auto drains = coordinator.GetPrefix(drain_prefix);
  if (!drains.ok()) return drains.status();
  const std::string placement_prefix = PlacementPrefix(cluster);
  auto placements = coordinator.GetPrefix(placement_prefix);
  if (!placements.ok()) return placements.status();

  std::map<std::string, std::string> url_of;                      // node -> client URL
  std::map<std::string, std::vector<std::string>> urls_of_group;  // by node name
  for (const KeyValue& kv : brokers->kvs) {
    auto r = DecodeNodeRegistration(kv.value);
    if (!r.ok()) {
      map.unreadable.push_back(kv.key + ": " + r.status().message());
      continue;
    }
    url_of[kv.key.substr(BrokersPrefix(cluster).size())] = r->url;
    urls_of_group[r->group].push_back(r->url);
  }
  for (const KeyValue& kv : groups->kvs) {
    const std::string group = GroupOfStateKey(kv.key, groups_prefix);
    if (group.empty()) continue;
    auto state = DecodeGroupState(kv.value);
    if (!state.ok()) {
      map.unreadable.push_back(kv.key + ": " + state.status().message());
      continue;
    }
    GroupRoute route{std::move(*state), {}, {}};
    if (auto url = url_of.find(route.state.leader); url != url_of.end()) {
      route.leader_url = url->second;
      route.node_urls.push_back(url->second);
    }
    for (const std::string& url : urls_of_group[group]) {
      if (url != route.leader_url) route.node_urls.push_back(url);
    }
    map.groups.emplace(group, std::move(route));
  }
  for (const KeyValue& kv : placements->kvs) {
    auto p = DecodeTopicPlacement(kv.value);
    if (!p.ok()) {
      map.unreadable.push_back(kv.key + ": " + p.status().message());
      continue;
    }
    map.topics.emplace(kv.key.substr(placement_prefix.size()), std::move(*p));
  }
  for (const KeyValue& kv : drains->kvs) {
    // <queue>/<generation>/<topic>
    const std::string_view rest = std::string_view(kv.key).substr(drain_prefix.size());
    const size_t slash1 = rest.find('/');
    const size_t slash2 = slash1 == std::string_view::npos ? slash1 : rest.find('/', slash1 + 1);
    QueueGeneration id;
    auto pending = DecodeDrainReport(kv.value);
    if (slash2 == std::string_view::npos || !ParseUint(rest.substr(0, slash1), &id.queue) ||
        !ParseUint(rest.substr(slash1 + 1, slash2 - slash1 - 1), &id.generation) || !pending.ok()) {
      map.unreadable.push_back(kv.key + ": not a drain report");
      continue;
    }
    id.topic = std::string(rest.substr(slash2 + 1));
    map.drains.emplace(std::move(id), std::move(*pending));
  }
  return map;
}

}  // namespace txmq::cluster
