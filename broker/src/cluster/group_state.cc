// The JSON of the cluster's records:
//
//   NodeRegistration  {"url": string, "group": string}
//   GroupState        {"epoch": int >= 1, "leader": string,
//                      "isr": [string, ...]}   (leader in isr unless empty;
//                                               no duplicates, no empty names)
//
// Unknown fields are ignored so that a later version can add some.
#include "broker/src/cluster/group_state.h"

#include <algorithm>
#include <set>

#include <nlohmann/json.hpp>

namespace txmq::cluster {

using nlohmann::json;

std::string BrokerKey(const std::string& cluster, const std::string& node) {
  return "/txmq/" + cluster + "/brokers/" + node;
}

std::string GroupStateKey(const std::string& cluster, const std::string& group) {
  return "/txmq/" + cluster + "/groups/" + group + "/state";
}

bool GroupState::InIsr(const std::string& node) const {
  return std::find(isr.begin(), isr.end(), node) != isr.end();
}

std::string EncodeNodeRegistration(const NodeRegistration& r) {
  return json{{"url", r.url}, {"group", r.group}}.dump();
}

Result<NodeRegistration> DecodeNodeRegistration(const std::string& text) {
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object() || !j.value("url", json()).is_string() ||
      !j.value("group", json()).is_string()) {
    return Status::Corruption("broker registration is not {url, group}: " + text);
  }
  return NodeRegistration{j["url"].get<std::string>(), j["group"].get<std::string>()};
}

std::string EncodeGroupState(const GroupState& s) {
  return json{{"epoch", s.epoch}, {"leader", s.leader}, {"isr", s.isr}}.dump();
}

Result<GroupState> DecodeGroupState(const std::string& text) {
  auto bad = [&](const std::string& why) {
    return Status::Corruption("group state record: " + why + ": " + text);
  };
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return bad("not a JSON object");
  const json epoch = j.value("epoch", json());
  const json leader = j.value("leader", json());
  const json isr = j.value("isr", json());
  if (!epoch.is_number_integer() || epoch.get<int64_t>() < 1) return bad("epoch is not >= 1");
  if (!leader.is_string()) return bad("leader is not a string");
  if (!isr.is_array()) return bad("isr is not an array");
  GroupState s;
  s.epoch = epoch.get<int64_t>();
  s.leader = leader.get<std::string>();
  std::set<std::string> seen;
  for (const json& member : isr) {
    if (!member.is_string() || member.get_ref<const std::string&>().empty()) {
      return bad("an isr member is not a node name");
    }
    if (!seen.insert(member.get<std::string>()).second) return bad("an isr member is repeated");
    s.isr.push_back(member.get<std::string>());
  }
  if (!s.leader.empty() && !s.InIsr(s.leader)) return bad("the leader is not in the isr");
  return s;
}

}  // namespace txmq::cluster
