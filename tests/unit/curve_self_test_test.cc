// The start-up self-test must tell a CURVE socket that refuses unknown keys
// from one that admits them: libzmq admits every key when no ZAP handler
// answers, and the broker relies on this test to notice.
#include "broker/src/auth/curve_self_test.h"

#include <gtest/gtest.h>

#include <zmq.hpp>

#include "broker/src/auth/acl.h"
#include "broker/src/auth/zap_handler.h"
#include "protocol/src/curve_keys.h"

namespace txmq::broker::auth {
namespace {

using namespace std::chrono_literals;

// A CURVE server socket in `context` on a free loopback port; returns the
// bound endpoint.
std::string BindCurveServer(zmq::socket_t& server, const curve::KeyPair& keys) {
  server.set(zmq::sockopt::linger, 0);
  server.set(zmq::sockopt::curve_server, 1);
  server.set(zmq::sockopt::curve_secretkey, keys.secret_key);
  server.set(zmq::sockopt::zap_domain, kZapDomain);
  server.bind("tcp://127.0.0.1:0");
  return server.get(zmq::sockopt::last_endpoint);
}

TEST(CurveSelfTest, PassesWhenTheZapHandlerRefusesAnUnknownKey) {
  zmq::context_t context;
  auto acl = Acl::Parse(R"({"principals": {}})", "test");
  ASSERT_TRUE(acl.ok()) << acl.status().ToString();
  AclHolder holder("test", *acl);
  auto zap = ZapHandler::Start(context, holder);
  ASSERT_TRUE(zap.ok()) << zap.status().ToString();
  auto keys = curve::NewKeyPair().value();
  zmq::socket_t server(context, zmq::socket_type::router);
  const std::string endpoint = BindCurveServer(server, keys);
  Status s = ProveUnknownKeyRefused(context, endpoint, keys.public_key, 20s);
  EXPECT_TRUE(s.ok()) << s.ToString();
  EXPECT_GE((*zap)->denied(), 1u);
  server.close();
}

TEST(CurveSelfTest, FailsWhenNoZapHandlerAnswers) {
  // The broken product: a CURVE socket with nobody to ask. libzmq lets
  // the stranger in, and the self-test must say so.
  zmq::context_t context;
  auto keys = curve::NewKeyPair().value();
  zmq::socket_t server(context, zmq::socket_type::router);
  const std::string endpoint = BindCurveServer(server, keys);
  Status s = ProveUnknownKeyRefused(context, endpoint, keys.public_key, 20s);
  EXPECT_EQ(s.code(), StatusCode::kInternal) << s.ToString();
  EXPECT_NE(s.message().find("unknown key was let in"), std::string::npos) << s.ToString();
  server.close();
}

TEST(CurveSelfTest, ReachesAWildcardBindThroughLoopback) {
  EXPECT_EQ(LocalEndpointOf("tcp://0.0.0.0:7800"), "tcp://127.0.0.1:7800");
  EXPECT_EQ(LocalEndpointOf("tcp://*:7800"), "tcp://127.0.0.1:7800");
  EXPECT_EQ(LocalEndpointOf("tcp://[::]:7800"), "tcp://[::1]:7800");
  EXPECT_EQ(LocalEndpointOf("tcp://10.1.2.3:7800"), "tcp://10.1.2.3:7800");
}

}  // namespace
}  // namespace txmq::broker::auth
