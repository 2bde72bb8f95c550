// The access-control list: who may connect (CURVE public keys) and what
// each principal may do. Loaded from the JSON file of txmqd --acl:
//
//   {"principals": {
//      "orders-svc": {"public_key": "<40 Z85 characters>",
//                     "produce": ["order-created", "orders.*"],
//                     "consume": ["orders-compensation"],
//                     "producer_groups": ["orders"],
//                     "admin": false}}}
//
// A list entry is a name, or a prefix ending in '*' ("orders.*" matches
// "orders.eu"; "*" matches everything). Names follow the topic/group rule;
// broker names ("%COMP%orders") may be listed too. An unknown field, a bad
// key, a key listed twice or a bad name is an error that names it: a typo
// in an ACL must never quietly grant or deny.
//
// Thread safety: an Acl is immutable once loaded (share it freely); the
// AclHolder may be used from any thread.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "txmq/status.h"

namespace txmq::broker::auth {

// Names and prefixes, as listed in one field of a principal.
class NamePatterns {
 public:
  // Adds one entry; INVALID_ARGUMENT naming it when it is not a name, a
  // name followed by '*', or "*".
  Status Add(std::string_view entry);
  bool Matches(std::string_view name) const;
  bool empty() const { return exact_.empty() && prefixes_.empty() && !any_; }

 private:
  std::vector<std::string> exact_;
  std::vector<std::string> prefixes_;
  bool any_ = false;
};

struct Principal {
  std::string name;
  std::string public_key;        // Z85
  NamePatterns produce;          // topics it may send to (and commit into)
  NamePatterns consume;          // consumer groups it may receive as
  NamePatterns producer_groups;  // groups it may send halves for, answer checks of, end
  bool admin = false;            // txmqctl's commands, topic creation
};

class Acl {
 public:
  // Parses the file's text; `origin` (the path) names it in errors.
  static Result<std::shared_ptr<const Acl>> Parse(std::string_view json, const std::string& origin);
  static Result<std::shared_ptr<const Acl>> Load(const std::string& path);

  // The principal a public key (Z85) belongs to; null when none.
  const Principal* ByKey(std::string_view public_key) const;
  size_t size() const { return by_key_.size(); }

 private:
  std::unordered_map<std::string, Principal> by_key_;
};

// The ACL in force. Reload swaps it whole, so a reader sees the old or the
// new list, never a mix; a failed reload keeps the old one.
class AclHolder {
 public:
  AclHolder(std::string path, std::shared_ptr<const Acl> acl)
      : path_(std::move(path)), acl_(std::move(acl)) {}

  std::shared_ptr<const Acl> Get() const {
    std::lock_guard<std::mutex> lock(mu_);
    return acl_;
  }
  // Bumped by every successful reload.
  uint64_t generation() const { return generation_.load(); }
  const std::string& path() const { return path_; }

  // Re-reads the file; on error the current list stays in force.
  Status Reload();

 private:
  const std::string path_;
  mutable std::mutex mu_;
  std::shared_ptr<const Acl> acl_;  // guarded by mu_
  std::atomic<uint64_t> generation_{0};
};

}  // namespace txmq::broker::auth
