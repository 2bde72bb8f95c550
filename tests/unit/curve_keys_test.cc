// CURVE key files: what txmqctl keygen writes and every client reads.
#include "protocol/src/curve_keys.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>

#include "tests/testutil/testutil.h"

namespace txmq::curve {
namespace {

TEST(CurveKeys, APairWrittenAndReadBack) {
  ASSERT_TRUE(Available()) << "libzmq without CURVE: install libzmq built with libsodium";
  testing::TempDir dir;
  auto pair = NewKeyPair();
  ASSERT_TRUE(pair.ok()) << pair.status().ToString();
  ASSERT_TRUE(WriteKeyPair(dir.Sub("alice"), *pair).ok());

  struct stat st;
  ASSERT_EQ(::stat(dir.Sub("alice.key").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u) << "the secret key is for its owner only";
  auto secret = ReadKeyFile(dir.Sub("alice.key"), "--curve-key");
  auto pub = ReadKeyFile(dir.Sub("alice.pub"), "--server-key");
  ASSERT_TRUE(secret.ok()) << secret.status().ToString();
  ASSERT_TRUE(pub.ok()) << pub.status().ToString();
  EXPECT_EQ(*secret, pair->secret_key);
  EXPECT_EQ(*pub, pair->public_key);
  EXPECT_EQ(PublicKeyOf(*secret).value(), pair->public_key);

  Status again = WriteKeyPair(dir.Sub("alice"), NewKeyPair().value());
  EXPECT_EQ(again.code(), StatusCode::kConflict) << "never overwrite a key";
  EXPECT_EQ(ReadKeyFile(dir.Sub("alice.key"), "k").value(), pair->secret_key);
}

TEST(CurveKeys, CommentsAroundTheKeyLineAreFine) {
  testing::TempDir dir;
  const std::string key = NewKeyPair()->public_key;
  std::ofstream(dir.Sub("k.pub")) << "# the broker of the orders cluster\n\n" << key << "  \n";
  EXPECT_EQ(ReadKeyFile(dir.Sub("k.pub"), "--server-key").value(), key);
}

TEST(CurveKeys, BadFilesAreNamed) {
  testing::TempDir dir;
  std::ofstream(dir.Sub("short.pub")) << "abc\n";
  std::ofstream(dir.Sub("two.pub")) << NewKeyPair()->public_key << "\n"
                                    << NewKeyPair()->public_key << "\n";
  for (std::string name : {"short.pub", "two.pub", "missing.pub"}) {
    auto r = ReadKeyFile(dir.Sub(name), "--server-key");
    ASSERT_FALSE(r.ok()) << name;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(r.status().message().find("--server-key " + dir.Sub(name)), std::string::npos)
        << r.status().message();
  }
}

TEST(CurveKeys, ClientKeysComeInPairs) {
  testing::TempDir dir;
  ASSERT_TRUE(WriteKeyPair(dir.Sub("c"), NewKeyPair().value()).ok());
  EXPECT_FALSE(LoadClientKeys("", "").value().enabled());
  auto half = LoadClientKeys(dir.Sub("c.key"), "");
  ASSERT_FALSE(half.ok());
  EXPECT_NE(half.status().message().find("--server-key"), std::string::npos)
      << half.status().message();
  auto both = LoadClientKeys(dir.Sub("c.key"), dir.Sub("c.pub"));
  ASSERT_TRUE(both.ok()) << both.status().ToString();
  EXPECT_TRUE(both->enabled());
  EXPECT_EQ(both->public_key, ReadKeyFile(dir.Sub("c.pub"), "").value());
}

}  // namespace
}  // namespace txmq::curve
