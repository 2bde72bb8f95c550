// A broker's keys and an ACL of test principals, written to files as an
// operator would (txmqctl keygen, a JSON ACL), for tests of CURVE and
// authorization against an embedded broker or a txmqd process.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "protocol/src/curve_keys.h"
#include "tests/testutil/testutil.h"

namespace txmq::testing {

struct TestPrincipal {
  std::string name;
  std::vector<std::string> produce{};
  std::vector<std::string> consume{};
  std::vector<std::string> producer_groups{};
  bool admin = false;
};

class SecureWorld {
 public:
  // Makes the broker's key pair and one pair per principal under `dir`,
  // and writes the ACL naming them all.
  SecureWorld(const std::string& dir, std::vector<TestPrincipal> principals);

  const std::string& broker_key_file() const { return broker_key_; }  // broker.key
  const std::string& broker_pub_file() const { return broker_pub_; }  // broker.pub
  const std::string& acl_file() const { return acl_; }

  std::string key_file(const std::string& name) const { return dir_ + "/" + name + ".key"; }
  std::string pub_file(const std::string& name) const { return dir_ + "/" + name + ".pub"; }
  const std::string& public_key(const std::string& name) const { return keys_.at(name); }
  // The keys a client of `name` connects with.
  curve::ClientKeys client_keys(const std::string& name) const;
  // A key pair no ACL names (files NAME.key/.pub).
  void MakeStranger(const std::string& name);

  // Rewrites the ACL with these principals (keys made for new names).
  void WriteAcl(std::vector<TestPrincipal> principals);

  // Adds the broker's key and ACL to `options`.
  void Secure(BrokerOptions& options) const;

 private:
  void MakeKeys(const std::string& name);

  std::string dir_;
  std::string broker_key_, broker_pub_, acl_;
  std::map<std::string, std::string> keys_;  // name -> public key
};

}  // namespace txmq::testing
