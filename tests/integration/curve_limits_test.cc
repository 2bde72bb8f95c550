// The per-principal limits of a CURVE broker: creation shares, parked
// polls and connections per principal, counted across restarts and
// reconnects, and audited refusals.
#include <gtest/gtest.h>

#include <functional>
#include <optional>

#include "protocol/src/connection.h"
#include "protocol/src/log.h"
#include "protocol/src/message_codec.h"
#include "protocol/src/util.h"
#include "tests/integration/curve_principals.h"
#include "tests/testutil/admin_client.h"
#include "tests/testutil/secure_world.h"
#include "tests/testutil/testutil.h"
#include "txmq/consumer.h"
#include "txmq/producer.h"

namespace txmq {
namespace {

using namespace std::chrono_literals;
using testing::AdminClient;
using testing::Principals;
using testing::SecureWorld;
using testing::TempDir;
using testing::WaitFor;

// A CURVE broker with some of its limits lowered.
class CurveLimits : public ::testing::Test {
 protected:
  void Start(const std::function<void(BrokerOptions&)>& lower) {
    world_ = std::make_unique<SecureWorld>(dir_.path(), Principals());
    options_ = testing::TestBrokerOptions(dir_.Sub("data"));
    world_->Secure(options_);
    lower(options_);
    broker_ = testing::StartBroker(options_);
    ASSERT_NE(broker_, nullptr);
  }

  // Stops the broker and starts it again on the same data.
  void Restart() {
    broker_.reset();
    broker_ = testing::StartBroker(options_);
    ASSERT_NE(broker_, nullptr);
  }

  // A raw connection of principal `who`, and one request on it.
  std::unique_ptr<net::Connection> ConnectAs(const std::string& who) {
    auto c = net::Connection::Open({.broker = broker_->endpoint(),
                                    .role = wire::Role::CONSUMER,
                                    .curve = world_->client_keys(who)});
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    return c.ok() ? std::move(c.value()) : nullptr;
  }
  static Status Call(net::Connection& c, const std::function<void(wire::Envelope::Builder)>& fill) {
    auto request = c.NewRequest();
    fill(request.envelope());
    auto reply = c.CallSync(std::move(request), 10s);
    return reply.ok() ? wire::StatusOf(reply->envelope()) : reply.status();
  }
  static Status SendTo(net::Connection& c, const std::string& topic) {
    static int sent = 0;
    return Call(c, [&](wire::Envelope::Builder e) {
      auto m = e.initSend().initMessage();
      m.setId("creation-limit-" + std::to_string(++sent));
      m.setTopic(topic);
      m.setBody(wire::AsData("x"));
    });
  }
  static Status PullAs(net::Connection& c, const std::string& group, const std::string& topic) {
    return Call(c, [&](wire::Envelope::Builder e) {
      auto p = e.initPull();
      p.setGroup(group);
      p.initTopics(1).set(0, topic);
      p.setMaxMessages(1);
    });
  }

  // The max-connections-per-principal row of status, if there is one.
  struct LimitUse {
    uint64_t limit = 0, used = 0, refused = 0;
  };
  static std::optional<LimitUse> ConnectionLimitUse(AdminClient& ops) {
    auto status = ops.Call([](wire::Envelope::Builder e) { e.setStatus(); });
    if (!status.ok()) return std::nullopt;
    for (auto l : status->envelope().getStatusOk().getLimits()) {
      if (wire::ToString(l.getName()) == "max-connections-per-principal") {
        return LimitUse{l.getLimit(), l.getUsed(), l.getRefused()};
      }
    }
    return std::nullopt;
  }

  TempDir dir_;
  std::unique_ptr<SecureWorld> world_;
  BrokerOptions options_;
  std::unique_ptr<Broker> broker_;
};

// Each principal creates topics and groups from its own share, counted from
// the creator stored with each, so a restart does not hand out a fresh one;
// another principal keeps creating, an admin has only the broker's limits,
// and a deleted name no longer counts.
TEST_F(CurveLimits, APrincipalsTopicsAndGroupsCountAgainstItsShareAlsoAfterARestart) {
  ASSERT_NO_FATAL_FAILURE(Start([](BrokerOptions& o) {
    o.max_topics_per_principal = 3;
    o.max_groups_per_principal = 2;
  }));
  auto flood = ConnectAs("flood");
  for (const char* t : {"flood-0", "flood-1", "flood-2"}) ASSERT_TRUE(SendTo(*flood, t).ok()) << t;
  Status refused = SendTo(*flood, "flood-3");
  EXPECT_EQ(refused.code(), StatusCode::kResourceExhausted) << refused.ToString();
  EXPECT_NE(refused.message().find("principal 'flood' created 3 topics"), std::string::npos)
      << refused.ToString();
  EXPECT_NE(refused.message().find("--max-topics-per-principal"), std::string::npos);
  EXPECT_TRUE(SendTo(*flood, "flood-1").ok()) << "its existing topics take messages";
  for (const char* g : {"flood-g0", "flood-g1"}) ASSERT_TRUE(PullAs(*flood, g, "flood-0").ok());
  refused = PullAs(*flood, "flood-g2", "flood-0");
  EXPECT_EQ(refused.code(), StatusCode::kResourceExhausted) << refused.ToString();
  EXPECT_NE(refused.message().find("--max-groups-per-principal"), std::string::npos);

  auto others = [&] {
    auto orders = ConnectAs("orders");
    EXPECT_TRUE(SendTo(*orders, "orders").ok()) << "another principal creates its own";
    auto billing = ConnectAs("billing");
    EXPECT_TRUE(PullAs(*billing, "billing", "orders").ok());
  };
  others();

  flood.reset();
  ASSERT_NO_FATAL_FAILURE(Restart());
  flood = ConnectAs("flood");
  EXPECT_EQ(SendTo(*flood, "flood-3").code(), StatusCode::kResourceExhausted)
      << "a restart gave the principal a fresh share";
  EXPECT_EQ(PullAs(*flood, "flood-g2", "flood-0").code(), StatusCode::kResourceExhausted);
  AdminClient ops(broker_->endpoint(), world_->client_keys("ops"));
  auto status = ops.Call([](wire::Envelope::Builder e) { e.setStatus(); });
  ASSERT_TRUE(status.ok());
  std::map<std::string, uint64_t> used;
  for (auto l : status->envelope().getStatusOk().getLimits()) {
    used[wire::ToString(l.getName())] = l.getUsed();
  }
  EXPECT_EQ(used["max-topics-per-principal"], 3u);
  EXPECT_EQ(used["max-groups-per-principal"], 2u);

  auto admin = [&](const std::function<void(wire::Envelope::Builder)>& fill) {
    auto reply = ops.Call(fill);
    return reply.ok() ? wire::StatusOf(reply->envelope()) : reply.status();
  };
  // An admin creates past a principal's share.
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE(admin([&](wire::Envelope::Builder e) {
                  e.initCreateTopic().setTopic("ops-" + std::to_string(i));
                }).ok());
  }
  EXPECT_EQ(ops.TopicMessages("ops-3"), 0);
  // What an operator deletes stops counting.
  Status deleted =
      admin([](wire::Envelope::Builder e) { e.initLifecycle().setDeleteTopic("flood-2"); });
  ASSERT_TRUE(deleted.ok()) << deleted.ToString();
  deleted = admin([](wire::Envelope::Builder e) {
    auto l = e.initLifecycle();
    l.setDeleteGroup("flood-g1");
    l.setForce(true);
  });
  ASSERT_TRUE(deleted.ok()) << deleted.ToString();
  EXPECT_TRUE(SendTo(*flood, "flood-3").ok());
  EXPECT_TRUE(PullAs(*flood, "flood-g2", "flood-0").ok());
  EXPECT_EQ(SendTo(*flood, "flood-4").code(), StatusCode::kResourceExhausted);
  others();
}

// Per-client limits are per principal: a second connection of the same key
// brings no second budget.
TEST_F(CurveLimits, AllConnectionsOfAPrincipalShareItsParkedPolls) {
  ASSERT_NO_FATAL_FAILURE(Start([](BrokerOptions& o) { o.max_parked_pulls_per_client = 2; }));
  Producer orders({.broker = broker_->endpoint(),
                   .curve_key = world_->key_file("orders"),
                   .server_key = world_->broker_pub_file(),
                   .group = "orders"});
  ASSERT_TRUE(orders.Start().ok());
  ASSERT_TRUE(orders.Send({.topic = "orders", .body = "creates the topic"}).ok());

  auto connect = [&] {
    auto c = net::Connection::Open({.broker = broker_->endpoint(),
                                    .role = wire::Role::CONSUMER,
                                    .group = "billing",
                                    .curve = world_->client_keys("billing")});
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    return c.ok() ? std::move(c.value()) : nullptr;
  };
  auto pull = [](net::Connection& c, uint32_t wait_ms) {
    auto request = c.NewRequest();
    auto p = request.envelope().initPull();
    p.setGroup("billing");
    p.initTopics(1).set(0, "orders");
    p.setWaitMs(wait_ms);
    p.setMaxMessages(1);
    p.setVisibilityTimeoutMs(60'000);
    return request;
  };
  auto first = connect();
  auto second = connect();
  ASSERT_TRUE(first && second);
  // Take the one message, so later pulls find nothing and wait.
  ASSERT_TRUE(first->CallSync(pull(*first, 0), 10s).ok());
  std::atomic<int> answered{0};
  for (int i = 0; i < 2; ++i) {
    first->Call(pull(*first, 20'000), 30s, [&](Result<wire::Frame>) { answered++; });
  }
  AdminClient ops(broker_->endpoint(), world_->client_keys("ops"));
  ASSERT_TRUE(WaitFor([&] {
    auto status = ops.Call([](wire::Envelope::Builder e) { e.setStatus(); });
    if (!status.ok()) return false;
    for (auto l : status->envelope().getStatusOk().getLimits()) {
      if (wire::ToString(l.getName()) == "max-parked-pulls" && l.getUsed() == 2) return true;
    }
    return false;
  }));
  auto refused = second->CallSync(pull(*second, 20'000), 10s);
  const Status st = refused.ok() ? wire::StatusOf(refused->envelope()) : refused.status();
  EXPECT_EQ(st.code(), StatusCode::kOverloaded) << st.ToString();
  EXPECT_NE(st.message().find("principal 'billing'"), std::string::npos) << st.ToString();
  EXPECT_NE(st.message().find("--max-parked-pulls-per-client"), std::string::npos) << st.ToString();
  EXPECT_EQ(answered.load(), 0) << "the first connection's polls still wait";
}

TEST_F(CurveLimits, APrincipalsConnectionsPastItsLimitAreRefusedUntilOneCloses) {
  ASSERT_NO_FATAL_FAILURE(Start([](BrokerOptions& o) { o.max_connections_per_principal = 2; }));
  auto connect = [&](const std::string& who) {
    auto c =
        net::Connection::Open({.broker = broker_->endpoint(), .curve = world_->client_keys(who)});
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    return c.ok() ? std::move(c.value()) : nullptr;
  };
  auto heartbeat = [](net::Connection& c) {
    auto request = c.NewRequest();
    request.envelope().setHeartbeat();
    auto reply = c.CallSync(std::move(request), 10s);
    return reply.ok() ? wire::StatusOf(reply->envelope()) : reply.status();
  };
  // One after the other: a connection is counted on its first request, and
  // which two of three racing connections get in is not the point here.
  auto first = connect("billing");
  ASSERT_TRUE(first);
  ASSERT_TRUE(heartbeat(*first).ok());
  auto second = connect("billing");
  ASSERT_TRUE(second);
  ASSERT_TRUE(heartbeat(*second).ok());
  auto third = connect("billing");
  ASSERT_TRUE(third);
  const Status refused = heartbeat(*third);
  EXPECT_EQ(refused.code(), StatusCode::kResourceExhausted) << refused.ToString();
  EXPECT_NE(refused.message().find("principal 'billing' has 2 connections"), std::string::npos)
      << refused.ToString();
  EXPECT_NE(refused.message().find("--max-connections-per-principal"), std::string::npos);
  // Another principal is not touched.
  AdminClient ops(broker_->endpoint(), world_->client_keys("ops"));
  auto use = ConnectionLimitUse(ops);
  ASSERT_TRUE(use.has_value()) << "status shows the limit";
  EXPECT_EQ(use->limit, 2u);
  EXPECT_EQ(use->used, 2u);
  EXPECT_GE(use->refused, 1u) << "its hello, and the heartbeat";
  // One closes: the refused connection gets in.
  first.reset();
  EXPECT_TRUE(WaitFor([&] { return heartbeat(*third).ok(); }, 10s));
}

// A client that reconnects keeps its routing id (the broker hands it over),
// on a new descriptor: it must be counted again, or a key could hold any
// number of connections by reconnecting.
TEST_F(CurveLimits, AClientThatReconnectsUnderItsRoutingIdIsCountedAgain) {
  ASSERT_NO_FATAL_FAILURE(Start([](BrokerOptions& o) { o.max_connections_per_principal = 2; }));
  const curve::ClientKeys keys = world_->client_keys("billing");
  zmq::context_t context(1);
  auto open_raw = [&] {
    auto s = std::make_unique<zmq::socket_t>(context, zmq::socket_type::dealer);
    s->set(zmq::sockopt::linger, 0);
    s->set(zmq::sockopt::routing_id, "reconnecting-client-1");
    s->set(zmq::sockopt::curve_serverkey, keys.server_key);
    s->set(zmq::sockopt::curve_publickey, keys.public_key);
    s->set(zmq::sockopt::curve_secretkey, keys.secret_key);
    s->connect(broker_->endpoint());
    return s;
  };
  auto raw_heartbeat = [](zmq::socket_t& s) -> Status {
    wire::OutFrame request(1);
    request.envelope().setHeartbeat();
    s.send(request.Encode(), zmq::send_flags::none);
    zmq::pollitem_t item{s.handle(), 0, ZMQ_POLLIN, 0};
    if (zmq::poll(&item, 1, 10s) == 0) return Status::Timeout("no answer to a heartbeat");
    zmq::message_t reply;
    (void)s.recv(reply);
    auto frame = wire::DecodeFrame(std::move(reply), {});
    return frame.ok() ? wire::StatusOf(frame->envelope()) : frame.status();
  };
  auto raw = open_raw();
  ASSERT_TRUE(raw_heartbeat(*raw).ok());
  raw.reset();       // the connection drops,
  raw = open_raw();  // and the client is back under the same routing id
  // The broker learns of the old connection's close within a second (its
  // guard also looks every second); the client keeps talking meanwhile.
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(raw_heartbeat(*raw).ok());
    std::this_thread::sleep_for(100ms);
  }
  AdminClient ops(broker_->endpoint(), world_->client_keys("ops"));
  auto use = ConnectionLimitUse(ops);
  ASSERT_TRUE(use.has_value());
  EXPECT_EQ(use->used, 1u) << "the reconnected client counts";

  auto heartbeat = [](net::Connection& c) {
    auto request = c.NewRequest();
    request.envelope().setHeartbeat();
    auto reply = c.CallSync(std::move(request), 10s);
    return reply.ok() ? wire::StatusOf(reply->envelope()) : reply.status();
  };
  auto other = net::Connection::Open({.broker = broker_->endpoint(), .curve = keys});
  ASSERT_TRUE(other.ok());
  EXPECT_TRUE(heartbeat(**other).ok());
  auto third = net::Connection::Open({.broker = broker_->endpoint(), .curve = keys});
  ASSERT_TRUE(third.ok());
  EXPECT_EQ(heartbeat(**third).code(), StatusCode::kResourceExhausted)
      << "two connections of billing are open already";
}

// Also a refusal's audit line names who asked: the principal and the client
// id, never the connection's secret routing id.
TEST_F(CurveLimits, ARefusedTopicCreationIsAuditedWithItsPrincipal) {
  ASSERT_NO_FATAL_FAILURE(Start([](BrokerOptions& o) { o.max_topics = 1; }));
  const std::string audit = dir_.Sub("audit.log");
  ASSERT_TRUE(SetAuditFile(audit).ok());
  AdminClient ops(broker_->endpoint(), world_->client_keys("ops"));
  auto create = [&](const std::string& topic) {
    auto reply = ops.Call([&](wire::Envelope::Builder e) {
      auto c = e.initCreateTopic();
      c.setTopic(topic);
      c.setOperator("alice");
    });
    return reply.ok() ? wire::StatusOf(reply->envelope()) : reply.status();
  };
  ASSERT_TRUE(create("first").ok());
  EXPECT_EQ(create("second").code(), StatusCode::kResourceExhausted);
  ASSERT_TRUE(
      WaitFor([&] { return testing::ReadFile(audit).find("topic=second") != std::string::npos; }));
  std::string line;
  std::istringstream lines(testing::ReadFile(audit));
  for (std::string l; std::getline(lines, l);) {
    if (l.find("topic=second") != std::string::npos) line = l;
  }
  EXPECT_NE(line.find("operator='alice' principal='ops'"), std::string::npos) << line;
  EXPECT_NE(line.find("result=refused"), std::string::npos) << line;
  ASSERT_TRUE(SetAuditFile("").ok());
}

}  // namespace
}  // namespace txmq
