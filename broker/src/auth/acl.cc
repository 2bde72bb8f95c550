#include "broker/src/auth/acl.h"

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "protocol/src/curve_keys.h"
#include "txmq/names.h"

namespace txmq::broker::auth {

namespace {

using nlohmann::json;

constexpr std::string_view kFields[] = {"public_key", "produce", "consume", "producer_groups",
                                        "admin"};

bool IsPrincipalName(std::string_view name) {
  if (name.empty() || name.size() > kMaxNameLength) return false;
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '.' || c == '-' || c == '@';
    if (!ok) return false;
  }
  return true;
}

Status ParseList(const std::string& where, const json& value, NamePatterns* out) {
  if (!value.is_array()) {
    return Status::InvalidArgument(where + " must be a list of names or prefixes (\"orders.*\")");
  }
  for (const json& entry : value) {
    if (!entry.is_string()) {
      return Status::InvalidArgument(where + " holds " + entry.dump() + ", not a string");
    }
    if (Status s = out->Add(entry.get<std::string>()); !s.ok()) {
      return Status::InvalidArgument(where + ": " + s.message());
    }
  }
  return Status::OK();
}

Status ParsePrincipal(const std::string& origin, const std::string& name, const json& body,
                      Principal* p) {
  const std::string where = origin + ": principal '" + name + "'";
  if (!IsPrincipalName(name)) {
    return Status::InvalidArgument(where + ": a principal name is 1-127 of [A-Za-z0-9_.@-]");
  }
  if (!body.is_object()) return Status::InvalidArgument(where + " must be an object");
  for (const auto& [field, value] : body.items()) {
    bool known = false;
    for (std::string_view k : kFields) known |= field == k;
    if (!known) {
      return Status::InvalidArgument(
          where + " has an unknown field '" + field +
          "' (known: public_key, produce, consume, producer_groups, admin)");
    }
  }
  p->name = name;
  auto key = body.find("public_key");
  if (key == body.end() || !key->is_string()) {
    return Status::InvalidArgument(where + " needs \"public_key\": the Z85 text of its NAME.pub");
  }
  p->public_key = key->get<std::string>();
  if (Status s = curve::CheckKey(where + " public_key", p->public_key); !s.ok()) return s;
  for (auto [field, list] : {std::pair{"produce", &p->produce},
                             {"consume", &p->consume},
                             {"producer_groups", &p->producer_groups}}) {
    if (auto it = body.find(field); it != body.end()) {
      if (Status s = ParseList(where + " " + field, *it, list); !s.ok()) return s;
    }
  }
  if (auto admin = body.find("admin"); admin != body.end()) {
    if (!admin->is_boolean())
      return Status::InvalidArgument(where + " admin must be true or false");
    p->admin = admin->get<bool>();
  }
  return Status::OK();
}

}  // namespace

Status NamePatterns::Add(std::string_view entry) {
  if (entry == "*") {
    any_ = true;
    return Status::OK();
  }
  const bool prefix = !entry.empty() && entry.back() == '*';
  const std::string_view name = prefix ? entry.substr(0, entry.size() - 1) : entry;
  if (Status s = ValidateNameOrSystem("entry", name); !s.ok()) {
    return Status::InvalidArgument("'" + std::string(entry) +
                                   "' is not a name, a name ending in '*', or '*' (" + s.message() +
                                   ")");
  }
  (prefix ? prefixes_ : exact_).emplace_back(name);
  return Status::OK();
}

bool NamePatterns::Matches(std::string_view name) const {
  if (any_) return true;
  for (const std::string& e : exact_) {
    if (e == name) return true;
  }
  for (const std::string& p : prefixes_) {
    if (name.size() >= p.size() && name.substr(0, p.size()) == p) return true;
  }
  return false;
}

Result<std::shared_ptr<const Acl>> Acl::Parse(std::string_view text, const std::string& origin) {
  json doc;
  try {
    doc = json::parse(text);
  } catch (const json::parse_error& e) {
    return Status::InvalidArgument(origin + ": not valid JSON: " + e.what());
  }
  if (!doc.is_object()) {
    return Status::InvalidArgument(origin + ": must be a JSON object {\"principals\": {...}}");
  }
  for (const auto& [field, value] : doc.items()) {
    if (field != "principals") {
      return Status::InvalidArgument(origin + ": unknown top-level field '" + field +
                                     "' (only \"principals\")");
    }
  }
  auto principals = doc.find("principals");
  if (principals == doc.end() || !principals->is_object()) {
    return Status::InvalidArgument(origin + ": needs \"principals\": {\"<name>\": {...}, ...}");
  }
  auto acl = std::make_shared<Acl>();
  std::unordered_map<std::string, std::string> names_by_key;
  for (const auto& [name, body] : principals->items()) {
    Principal p;
    if (Status s = ParsePrincipal(origin, name, body, &p); !s.ok()) return s;
    if (auto [it, fresh] = names_by_key.emplace(p.public_key, name); !fresh) {
      return Status::InvalidArgument(origin + ": principals '" + it->second + "' and '" + name +
                                     "' have the same public_key; a key names one principal");
    }
    acl->by_key_.emplace(p.public_key, std::move(p));
  }
  return std::shared_ptr<const Acl>(std::move(acl));
}

Result<std::shared_ptr<const Acl>> Acl::Load(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Status::InvalidArgument("ACL file " + path + " cannot be read");
  std::stringstream text;
  text << in.rdbuf();
  if (in.bad()) return Status::InvalidArgument("ACL file " + path + " cannot be read");
  return Parse(text.str(), "ACL file " + path);
}

const Principal* Acl::ByKey(std::string_view public_key) const {
  auto it = by_key_.find(std::string(public_key));
  return it == by_key_.end() ? nullptr : &it->second;
}

Status AclHolder::Reload() {
  auto fresh = Acl::Load(path_);
  if (!fresh.ok()) return fresh.status();
  {
    std::lock_guard<std::mutex> lock(mu_);
    acl_ = std::move(fresh.value());
  }
  generation_.fetch_add(1);
  return Status::OK();
}

}  // namespace txmq::broker::auth
