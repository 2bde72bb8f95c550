// The JSON of a stored placement:
//
//   TopicPlacement  {"queues": int >= 1, "groups": [string, ...],
//                    "generation": [int, ...], "from": [string, ...]}
//                   (exactly `queues` groups, none empty; generation and
//                   from only once a queue moved, then `queues` of each)
//
// Unknown fields are ignored so that a later version can add some.
#include "broker/src/cluster/placement.h"

#include <algorithm>
#include <cmath>
#include <set>

#include <nlohmann/json.hpp>

#include "protocol/src/fmix64.h"
#include "protocol/src/util.h"

namespace txmq::cluster {

using nlohmann::json;

namespace {

// weight / -ln(u), u in (0, 1) from the top 53 bits of the hash: the
// maximum over groups picks each with probability weight / total.
double Score(uint64_t hash, uint32_t weight) {
  const double u = (static_cast<double>(hash >> 11) + 0.5) * 0x1.0p-53;
  return static_cast<double>(weight) / -std::log(u);
}

}  // namespace

uint64_t PlacementHash(std::string_view topic, uint32_t queue, std::string_view group) {
  std::string input;
  input.reserve(topic.size() + group.size() + 12);
  input.append(topic);
  input.push_back('\0');
  input.append(std::to_string(queue));
  input.push_back('\0');
  input.append(group);
  return Fmix64(StableHash(input));
}

Result<TopicPlacement> PlaceQueues(std::string_view topic, uint32_t queue_count,
                                   const std::vector<GroupWeight>& groups) {
  if (queue_count == 0) return Status::InvalidArgument("placement: queue count 0");
  if (groups.empty()) {
    return Status::InvalidArgument("placement of topic " + std::string(topic) +
                                   ": no broker group to place it on");
  }
  std::set<std::string_view> names;
  uint64_t total_weight = 0;
  for (const GroupWeight& g : groups) {
    if (g.group.empty()) return Status::InvalidArgument("placement: a group without a name");
    if (g.weight == 0) {
      return Status::InvalidArgument("placement: group " + g.group + " has weight 0");
    }
    if (!names.insert(g.group).second) {
      return Status::InvalidArgument("placement: group " + g.group + " named twice");
    }
    total_weight += g.weight;
  }
  // Each group's share, rounded up: the shares add up to at least
  // queue_count, so every queue finds a group with room.
  std::vector<uint64_t> room(groups.size());
  for (size_t i = 0; i < groups.size(); ++i) {
    room[i] = (uint64_t{queue_count} * groups[i].weight + total_weight - 1) / total_weight;
  }
  TopicPlacement placement{.queue_count = queue_count};
  placement.groups.reserve(queue_count);
  std::vector<size_t> ranked(groups.size());
  std::vector<double> score(groups.size());
  for (uint32_t q = 0; q < queue_count; ++q) {
    for (size_t i = 0; i < groups.size(); ++i) {
      ranked[i] = i;
      score[i] = Score(PlacementHash(topic, q, groups[i].group), groups[i].weight);
    }
    std::sort(ranked.begin(), ranked.end(), [&](size_t a, size_t b) {
      if (score[a] != score[b]) return score[a] > score[b];
      return groups[a].group < groups[b].group;
    });
    for (size_t i : ranked) {
      if (room[i] == 0) continue;
      --room[i];
      placement.groups.push_back(groups[i].group);
      break;
    }
  }
  return placement;
}

std::string PlacementPrefix(const std::string& cluster) {
  return "/txmq/" + cluster + "/placement/";
}

std::string PlacementKey(const std::string& cluster, std::string_view topic) {
  return PlacementPrefix(cluster) + std::string(topic);
}

std::string EncodeTopicPlacement(const TopicPlacement& p) {
  json j{{"queues", p.queue_count}, {"groups", p.groups}};
  if (!p.generation.empty()) {
    j["generation"] = p.generation;
    j["from"] = p.drain_from;
  }
  return j.dump();
}

Result<TopicPlacement> DecodeTopicPlacement(const std::string& text) {
  auto bad = [&](const std::string& why) {
    return Status::Corruption("topic placement record: " + why + ": " + text);
  };
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return bad("not a JSON object");
  const json queues = j.value("queues", json());
  const json groups = j.value("groups", json());
  if (!queues.is_number_unsigned() || queues.get<uint64_t>() == 0 ||
      queues.get<uint64_t>() > UINT32_MAX) {
    return bad("queues is not a count >= 1");
  }
  if (!groups.is_array() || groups.size() != queues.get<uint64_t>()) {
    return bad("groups is not an array of one group per queue");
  }
  TopicPlacement p{.queue_count = queues.get<uint32_t>()};
  for (const json& g : groups) {
    if (!g.is_string() || g.get<std::string>().empty()) return bad("a group is not a name");
    p.groups.push_back(g.get<std::string>());
  }
  const json generation = j.value("generation", json());
  const json from = j.value("from", json());
  if (generation.is_null() != from.is_null()) return bad("generation and from come together");
  if (generation.is_null()) return p;
  if (!generation.is_array() || generation.size() != p.queue_count || !from.is_array() ||
      from.size() != p.queue_count) {
    return bad("generation and from are not arrays of one entry per queue");
  }
  for (size_t q = 0; q < p.queue_count; ++q) {
    if (!generation[q].is_number_unsigned() || generation[q].get<uint64_t>() > UINT32_MAX) {
      return bad("a generation is not a count");
    }
    if (!from[q].is_string()) return bad("a from is not a group name");
    p.generation.push_back(generation[q].get<uint32_t>());
    p.drain_from.push_back(from[q].get<std::string>());
  }
  return p;
}

}  // namespace txmq::cluster
