// The ACL file: what it grants, and that every mistake in it is an error
// naming the mistake (never a silent grant or denial).
#include "broker/src/auth/acl.h"

#include <gtest/gtest.h>

#include <fstream>

#include "broker/src/auth/security.h"
#include "protocol/src/curve_keys.h"
#include "tests/testutil/testutil.h"

namespace txmq::broker::auth {
namespace {

std::string Key() { return curve::NewKeyPair().value().public_key; }

TEST(NamePatterns, NamesPrefixesAndEverything) {
  NamePatterns p;
  ASSERT_TRUE(p.Add("orders").ok());
  ASSERT_TRUE(p.Add("eu.*").ok());
  ASSERT_TRUE(p.Add("%COMP%orders").ok());
  EXPECT_TRUE(p.Matches("orders"));
  EXPECT_FALSE(p.Matches("orders2"));
  EXPECT_FALSE(p.Matches("order"));
  EXPECT_TRUE(p.Matches("eu.orders"));
  EXPECT_TRUE(p.Matches("eu."));
  EXPECT_FALSE(p.Matches("eu"));
  EXPECT_TRUE(p.Matches("%COMP%orders"));
  NamePatterns all;
  ASSERT_TRUE(all.Add("*").ok());
  EXPECT_TRUE(all.Matches("anything"));
  NamePatterns none;
  EXPECT_FALSE(none.Matches("orders"));
}

TEST(NamePatterns, BadEntriesAreNamed) {
  NamePatterns p;
  for (const char* bad : {"", "a b", "or*ders", "**", "x/y*"}) {
    Status s = p.Add(bad);
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << bad;
    EXPECT_NE(s.message().find(std::string("'") + bad + "'"), std::string::npos) << s.message();
  }
}

TEST(Acl, GrantsWhatItSays) {
  const std::string alice = Key(), bob = Key();
  auto acl = Acl::Parse(R"({"principals": {
      "alice": {"public_key": ")" +
                            alice + R"(", "produce": ["orders", "eu.*"],
                "consume": ["billing"], "producer_groups": ["order-svc"], "admin": true},
      "bob":   {"public_key": ")" +
                            bob + R"("}}})",
                        "test.json");
  ASSERT_TRUE(acl.ok()) << acl.status().ToString();
  EXPECT_EQ((*acl)->size(), 2u);
  const Principal* a = (*acl)->ByKey(alice);
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->name, "alice");
  EXPECT_TRUE(a->produce.Matches("eu.x"));
  EXPECT_TRUE(a->consume.Matches("billing"));
  EXPECT_TRUE(a->producer_groups.Matches("order-svc"));
  EXPECT_TRUE(a->admin);
  const Principal* b = (*acl)->ByKey(bob);
  ASSERT_NE(b, nullptr);
  EXPECT_TRUE(b->produce.empty());  // nothing listed: nothing granted
  EXPECT_FALSE(b->admin);
  EXPECT_EQ((*acl)->ByKey(Key()), nullptr);
}

TEST(Acl, MistakesAreErrorsThatNameThem) {
  const std::string k = Key();
  struct Case {
    std::string json;
    std::string names;
  } cases[] = {
      {"not json", "not valid JSON"},
      {"[]", "must be a JSON object"},
      {R"({"principal": {}})", "unknown top-level field 'principal'"},
      {R"({"principals": {"a": {"public_key": "short"}}})", "'short' is not a CURVE key"},
      {R"({"principals": {"a": {}}})", "needs \"public_key\""},
      {R"({"principals": {"a": {"public_key": ")" + k + R"(", "produces": ["x"]}}})",
       "unknown field 'produces'"},
      {R"({"principals": {"a": {"public_key": ")" + k + R"(", "produce": "x"}}})",
       "must be a list"},
      {R"({"principals": {"a": {"public_key": ")" + k + R"(", "consume": ["a b"]}}})",
       "'a b' is not a name"},
      {R"({"principals": {"a": {"public_key": ")" + k + R"(", "admin": "yes"}}})",
       "admin must be true or false"},
      {R"({"principals": {"a": {"public_key": ")" + k + R"("}, "b": {"public_key": ")" + k +
           R"("}}})",
       "have the same public_key"},
      {R"({"principals": {"bad name": {"public_key": ")" + k + R"("}}})", "principal name"},
  };
  for (const Case& c : cases) {
    auto acl = Acl::Parse(c.json, "acl.json");
    ASSERT_FALSE(acl.ok()) << c.json;
    EXPECT_EQ(acl.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(acl.status().message().find(c.names), std::string::npos)
        << acl.status().message() << "\n  for " << c.json;
    EXPECT_NE(acl.status().message().find("acl.json"), std::string::npos);
  }
}

TEST(AclHolder, ReloadSwapsWholeAndKeepsTheOldOneOnError) {
  testing::TempDir dir;
  const std::string path = dir.Sub("acl.json");
  const std::string alice = Key(), bob = Key();
  auto write = [&](const std::string& text) { std::ofstream(path) << text; };
  write(R"({"principals": {"alice": {"public_key": ")" + alice + R"("}}})");
  auto first = Acl::Load(path);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  AclHolder holder(path, first.value());
  EXPECT_NE(holder.Get()->ByKey(alice), nullptr);

  write(R"({"principals": {"bob": {"public_key": ")" + bob + R"("}}})");
  ASSERT_TRUE(holder.Reload().ok());
  EXPECT_EQ(holder.generation(), 1u);
  EXPECT_EQ(holder.Get()->ByKey(alice), nullptr) << "alice was revoked";
  EXPECT_NE(holder.Get()->ByKey(bob), nullptr);

  write("{broken");
  EXPECT_FALSE(holder.Reload().ok());
  EXPECT_EQ(holder.generation(), 1u);
  EXPECT_NE(holder.Get()->ByKey(bob), nullptr) << "a bad file keeps the list in force";
}

TEST(Listen, OnlyLoopbackCountsAsLocal) {
  for (const char* local :
       {"tcp://127.0.0.1:7800", "tcp://127.0.0.1:*", "tcp://127.1.2.3:1", "tcp://localhost:7800",
        "tcp://[::1]:7800", "ipc:///tmp/txmq.sock", "inproc://x"}) {
    EXPECT_TRUE(IsLoopbackEndpoint(local)) << local;
  }
  for (const char* reachable : {"tcp://0.0.0.0:7800", "tcp://*:7800", "tcp://10.0.0.5:7800",
                                "tcp://eth0:7800", "tcp://[::]:7800", "tcp://127.0.0.1.evil:7800",
                                "tcp://eth0;127.0.0.1:7800", "tcp://128.0.0.1:7800"}) {
    EXPECT_FALSE(IsLoopbackEndpoint(reachable)) << reachable;
  }
}

TEST(Listen, PlaintextBeyondLoopbackNeedsInsecureAndCurveNeedsBothFiles) {
  BrokerOptions o;
  o.listen = "tcp://0.0.0.0:7800";
  Status refused = ValidateBrokerOptions(o);
  EXPECT_EQ(refused.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(refused.message().find("--insecure"), std::string::npos) << refused.message();
  o.insecure = true;
  EXPECT_TRUE(ValidateBrokerOptions(o).ok());
  o.insecure = false;
  o.curve_secret_key_file = "broker.key";
  Status half = ValidateBrokerOptions(o);
  EXPECT_EQ(half.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(half.message().find("acl_file"), std::string::npos) << half.message();
  o.acl_file = "acl.json";
  EXPECT_TRUE(ValidateBrokerOptions(o).ok()) << "CURVE may listen anywhere";
}

}  // namespace
}  // namespace txmq::broker::auth
