// Counting connections per principal, with the descriptor table faked: a
// descriptor's peer is whatever the test says it is now.
#include "broker/src/principal_connections.h"

#include <gtest/gtest.h>

#include <map>

namespace txmq::broker {
namespace {

class PrincipalConnectionsTest : public ::testing::Test {
 protected:
  std::map<int, std::string> peers_;  // fd -> peer; absent: closed
  PrincipalConnections counts_{2, [this](int fd) {
                                 auto it = peers_.find(fd);
                                 return it == peers_.end() ? std::string() : it->second;
                               }};
};

TEST_F(PrincipalConnectionsTest, APrincipalPastItsLimitIsRefusedAndOthersAreNot) {
  peers_ = {{10, "127.0.0.1:5001"},
            {11, "127.0.0.1:5002"},
            {12, "127.0.0.1:5003"},
            {13, "127.0.0.1:5004"}};
  EXPECT_TRUE(counts_.Claim(10, "billing").ok());
  EXPECT_TRUE(counts_.Claim(11, "billing").ok());
  EXPECT_TRUE(counts_.Claim(11, "billing").ok()) << "a claim again is no second connection";
  const Status third = counts_.Claim(12, "billing");
  EXPECT_EQ(third.code(), StatusCode::kResourceExhausted);
  EXPECT_NE(third.message().find("principal 'billing' has 2 connections"), std::string::npos)
      << third.ToString();
  EXPECT_NE(third.message().find("--max-connections-per-principal"), std::string::npos);
  EXPECT_TRUE(counts_.Claim(13, "orders").ok());
  EXPECT_EQ(counts_.Of("billing"), 2u);
  EXPECT_EQ(counts_.Largest(), 2u);
}

TEST_F(PrincipalConnectionsTest, AClosedConnectionMakesRoom) {
  peers_ = {{10, "127.0.0.1:5001"}, {11, "127.0.0.1:5002"}, {12, "127.0.0.1:5003"}};
  ASSERT_TRUE(counts_.Claim(10, "billing").ok());
  ASSERT_TRUE(counts_.Claim(11, "billing").ok());
  peers_.erase(10);
  counts_.Closed(10);
  EXPECT_EQ(counts_.Of("billing"), 1u);
  EXPECT_TRUE(counts_.Claim(12, "billing").ok());
}

TEST_F(PrincipalConnectionsTest, ACloseEventForAReusedDescriptorKeepsTheNewConnection) {
  peers_ = {{10, "127.0.0.1:5001"}};
  ASSERT_TRUE(counts_.Claim(10, "billing").ok());
  // The kernel gave descriptor 10 to a new connection before libzmq's close
  // event of the old one arrived; the new one is claimed first.
  peers_[10] = "127.0.0.1:6001";
  ASSERT_TRUE(counts_.Claim(10, "billing").ok());
  EXPECT_EQ(counts_.Of("billing"), 1u) << "the old claim went, the new one counts";
  counts_.Closed(10);  // the old connection's late event
  EXPECT_EQ(counts_.Of("billing"), 1u);
}

TEST_F(PrincipalConnectionsTest, ConnectionsClosedWithoutAnEventAreFoundWhenTheLimitIsReached) {
  peers_ = {{10, "127.0.0.1:5001"}, {11, "127.0.0.1:5002"}, {12, "127.0.0.1:5003"}};
  ASSERT_TRUE(counts_.Claim(10, "billing").ok());
  ASSERT_TRUE(counts_.Claim(11, "billing").ok());
  peers_.erase(11);  // closed, and libzmq said nothing
  EXPECT_TRUE(counts_.Claim(12, "billing").ok());
  EXPECT_EQ(counts_.Of("billing"), 2u);
  peers_.erase(12);
  counts_.Prune();
  EXPECT_EQ(counts_.Of("billing"), 1u);
}

TEST_F(PrincipalConnectionsTest, AConnectionClosedBeforeItsRequestIsNotCounted) {
  // Its descriptor has no peer any more: a claim could never be released.
  EXPECT_TRUE(counts_.Claim(10, "billing").ok());
  EXPECT_EQ(counts_.Of("billing"), 0u);
}

TEST_F(PrincipalConnectionsTest, EveryReleaseIsCountedSoReconnectedClientsClaimAgain) {
  peers_ = {{10, "127.0.0.1:5001"}};
  ASSERT_TRUE(counts_.Claim(10, "billing").ok());
  const uint64_t before = counts_.releases();
  peers_.erase(10);
  counts_.Closed(10);
  EXPECT_EQ(counts_.releases(), before + 1);
}

TEST(PrincipalConnections, ZeroMeansNoLimit) {
  PrincipalConnections counts(0, [](int fd) { return std::to_string(fd); });
  for (int fd = 0; fd < 100; ++fd) EXPECT_TRUE(counts.Claim(fd, "everyone").ok());
  EXPECT_EQ(counts.Of("everyone"), 100u);
}

}  // namespace
}  // namespace txmq::broker
