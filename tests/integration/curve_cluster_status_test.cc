// Under CURVE and an ACL, any principal may ask for cluster status, as for
// status: it is what the broker's NOT_LEADER answers half say anyway.
#include <gtest/gtest.h>

#include "protocol/src/cluster_status_codec.h"
#include "protocol/src/connection.h"
#include "tests/testutil/secure_world.h"
#include "tests/testutil/testutil.h"

namespace txmq {
namespace {

using namespace std::chrono_literals;

TEST(CurveClusterStatus, APrincipalWithoutAdminMayAsk) {
  testing::TempDir dir;
  testing::SecureWorld world(dir.path(), {{.name = "mallory"}});
  BrokerOptions options = testing::TestBrokerOptions(dir.Sub("data"));
  world.Secure(options);
  auto broker = testing::StartBroker(options);
  ASSERT_NE(broker, nullptr);
  auto c = net::Connection::Open({.broker = broker->endpoint(),
                                  .role = wire::Role::ADMIN,
                                  .curve = world.client_keys("mallory")});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  auto request = (*c)->NewRequest();
  request.envelope().setClusterStatus();
  auto reply = (*c)->CallSync(std::move(request), 10s);
  ASSERT_TRUE(reply.ok()) << reply.status().ToString();
  const auto status = wire::ReadClusterStatus(reply->envelope().getClusterStatusOk());
  EXPECT_FALSE(status.member);
  EXPECT_EQ(status.node, options.name);
}

}  // namespace
}  // namespace txmq
