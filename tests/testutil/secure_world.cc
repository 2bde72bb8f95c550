#include "tests/testutil/secure_world.h"

#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

namespace txmq::testing {

SecureWorld::SecureWorld(const std::string& dir, std::vector<TestPrincipal> principals)
    : dir_(dir),
      broker_key_(dir + "/broker.key"),
      broker_pub_(dir + "/broker.pub"),
      acl_(dir + "/acl.json") {
  MakeKeys("broker");
  WriteAcl(std::move(principals));
}

void SecureWorld::MakeKeys(const std::string& name) {
  auto pair = curve::NewKeyPair();
  EXPECT_TRUE(pair.ok()) << pair.status().ToString();
  EXPECT_TRUE(curve::WriteKeyPair(dir_ + "/" + name, *pair).ok());
  keys_[name] = pair->public_key;
}

void SecureWorld::MakeStranger(const std::string& name) { MakeKeys(name); }

curve::ClientKeys SecureWorld::client_keys(const std::string& name) const {
  auto keys = curve::LoadClientKeys(key_file(name), broker_pub_);
  EXPECT_TRUE(keys.ok()) << keys.status().ToString();
  return keys.ok() ? *keys : curve::ClientKeys{};
}

void SecureWorld::WriteAcl(std::vector<TestPrincipal> principals) {
  nlohmann::json all = nlohmann::json::object();
  for (const TestPrincipal& p : principals) {
    if (!keys_.count(p.name)) MakeKeys(p.name);
    all[p.name] = {{"public_key", keys_.at(p.name)},
                   {"produce", p.produce},
                   {"consume", p.consume},
                   {"producer_groups", p.producer_groups},
                   {"admin", p.admin}};
  }
  const std::string tmp = acl_ + ".tmp";
  std::ofstream(tmp) << nlohmann::json{{"principals", all}}.dump(2) << "\n";
  std::rename(tmp.c_str(), acl_.c_str());
}

void SecureWorld::Secure(BrokerOptions& options) const {
  options.curve_secret_key_file = broker_key_;
  options.acl_file = acl_;
}

}  // namespace txmq::testing
