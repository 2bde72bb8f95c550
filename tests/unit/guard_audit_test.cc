// The guard's audit line for a refused operator request: every field a
// client chooses is escaped, so a client id cannot write lines of its own
// into the audit trail.
#include <gtest/gtest.h>

#include "broker/src/auth/guard.h"
#include "broker/src/clients.h"
#include "broker/src/core.h"
#include "tests/testutil/log_capture.h"
#include "tests/unit/broker_harness.h"

namespace txmq::broker::auth {
namespace {

TEST(GuardAudit, AClientIdCannotForgeAnAuditLine) {
  Guard guard([](const std::string&) { return std::nullopt; });
  ClientInfo client;
  client.id = "m\nFORGED operator='alice' action=commit result=applied";
  Principal mallory;
  mallory.name = "mallory";
  RequestContext ctx;
  ctx.client = &client;
  ctx.principal = &mallory;
  testing::LogCapture audit("audit");
  guard.LogRefusal(ctx, Status::PermissionDenied("admin is false"), /*admin_verb=*/true);
  const std::string text = audit.text();
  ASSERT_NE(text.find("action=refused"), std::string::npos) << text;
  EXPECT_EQ(text.find("\nFORGED"), std::string::npos) << text;
}

// And hello refuses such an id in the first place: it goes into other log
// lines too (a refused hello, a client forgotten).
TEST(GuardAudit, AClientIdWithAControlCharacterIsRefusedAtHello) {
  BrokerOptions o;
  BrokerHarness h(o);
  for (const std::string& id : {std::string("m\nFORGED"), std::string("tab\there")}) {
    auto reply = h.Call(id, [&](wire::Envelope::Builder e) {
      auto hello = e.initHello();
      hello.setClientId(id);
      hello.setRole(wire::Role::PRODUCER);
      hello.setGroup("g");
      hello.setVersion(wire::PROTOCOL_VERSION);
    });
    ASSERT_TRUE(reply.has_value());
    EXPECT_EQ(wire::StatusOf(reply->envelope()).code(), StatusCode::kInvalidArgument);
  }
}

}  // namespace
}  // namespace txmq::broker::auth
