// A client id belongs to the connection that registered it. Another
// connection presenting it (as its routing id, in hello, or both) gets
// nothing of the owner's: not its parked delivery, not its name.
#include <gtest/gtest.h>

#include <future>

#include "protocol/src/connection.h"
#include "protocol/src/message_codec.h"
#include "tests/integration/raw_client.h"
#include "tests/testutil/log_capture.h"
#include "tests/testutil/testutil.h"
#include "txmq/producer.h"

namespace txmq {
namespace {

using namespace std::chrono_literals;
using testing::RawClient;
using testing::StartBroker;
using testing::TempDir;
using testing::TestBrokerOptions;

class ClientIdentity : public ::testing::Test {
 protected:
  void SetUp() override {
    broker_ = StartBroker(TestBrokerOptions(dir_.Sub("data")));
    ASSERT_NE(broker_, nullptr);
  }

  std::unique_ptr<net::Connection> Client(const std::string& id, wire::Role role,
                                          const std::string& group) {
    auto c = net::Connection::Open(
        {.broker = broker_->endpoint(), .client_id = id, .role = role, .group = group});
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    // Requests of one connection are served in order: once this answer
    // is back, the hello queued before it was served too.
    auto beat = c.value()->NewRequest();
    beat.envelope().setHeartbeat();
    auto r = c.value()->CallSync(std::move(beat), 10s);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_TRUE(r->envelope().getHeartbeatOk().getRegistered());
    return std::move(c.value());
  }

  static Status Hello(RawClient& raw, const std::string& id, wire::Role role,
                      const std::string& group) {
    wire::OutFrame hello(1);
    auto h = hello.envelope().initHello();
    h.setClientId(id);
    h.setRole(role);
    h.setGroup(group);
    h.setVersion(wire::PROTOCOL_VERSION);
    return raw.Call(hello);
  }

  TempDir dir_;
  std::unique_ptr<Broker> broker_;
};

TEST_F(ClientIdentity, ParkedDeliveryGoesToItsConnectionNotToAnImpostor) {
  auto victim = Client("victim-1", wire::Role::CONSUMER, "billing");
  auto pull = victim->NewRequest();
  auto p = pull.envelope().initPull();
  p.setGroup("billing");
  p.initTopics(1).set(0, "invoices");
  p.setMaxMessages(1);
  p.setWaitMs(20'000);
  std::promise<Result<wire::Frame>> pulled;
  auto pulled_future = pulled.get_future();
  victim->Call(std::move(pull), 30s,
               [&pulled](Result<wire::Frame> r) { pulled.set_value(std::move(r)); });
  // Served in order: the heartbeat's answer means the pull is parked.
  auto beat = victim->NewRequest();
  beat.envelope().setHeartbeat();
  ASSERT_TRUE(victim->CallSync(std::move(beat), 10s).ok());

  // The impostor knows the victim's client id (group show prints it) and
  // presents it as its routing id and in hello.
  RawClient impostor(broker_->endpoint(), "victim-1");
  const Status hello = Hello(impostor, "victim-1", wire::Role::CONSUMER, "billing");
  EXPECT_EQ(hello.code(), StatusCode::kConflict) << hello.ToString();

  Producer producer({.broker = broker_->endpoint()});
  ASSERT_TRUE(producer.Start().ok());
  ASSERT_TRUE(producer.Send({.topic = "invoices", .body = "for the victim"}).ok());

  ASSERT_EQ(pulled_future.wait_for(20s), std::future_status::ready);
  auto got = pulled_future.get();
  ASSERT_TRUE(got.ok()) << "the victim lost its parked pull: " << got.status().ToString();
  auto messages = got->envelope().getPullOk().getMessages();
  ASSERT_EQ(messages.size(), 1u);
  EXPECT_EQ(wire::DeliveredFromWire(messages[0]).body, "for the victim");
  // Nothing of it reached the impostor.
  while (auto frame = impostor.Receive(500ms)) {
    EXPECT_NE(frame->envelope().which(), wire::Envelope::PULL_OK) << "the impostor got a delivery";
  }
}

TEST_F(ClientIdentity, ACheckerIdIsNotTakenOverByAnotherConnection) {
  auto owner = Client("orders-checker", wire::Role::PRODUCER, "orders");
  RawClient other(broker_->endpoint());
  EXPECT_EQ(Hello(other, "orders-checker", wire::Role::PRODUCER, "orders").code(),
            StatusCode::kConflict);
  // The owner keeps its registration.
  auto beat = owner->NewRequest();
  beat.envelope().setHeartbeat();
  auto r = owner->CallSync(std::move(beat), 10s);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->envelope().getHeartbeatOk().getRegistered());
}

TEST_F(ClientIdentity, AnIdIsFreeAgainOnceItsOwnerSaidGoodbye) {
  auto owner = Client("reused-name", wire::Role::CONSUMER, "g");
  owner->Close();
  owner.reset();
  RawClient next(broker_->endpoint());
  EXPECT_TRUE(Hello(next, "reused-name", wire::Role::CONSUMER, "g").ok());
}

// Hello's instance (queue_owners.h) is bounded like the client id: a
// longer one is refused, naming both sizes, and the broker keeps serving.
TEST_F(ClientIdentity, AnInstanceOverTheLimitIsRefusedByName) {
  RawClient raw(broker_->endpoint());
  wire::OutFrame hello(1);
  auto h = hello.envelope().initHello();
  h.setClientId("long-instance");
  h.setRole(wire::Role::CONSUMER);
  h.setGroup("g");
  h.setVersion(wire::PROTOCOL_VERSION);
  h.setInstance(std::string(256, 'i'));
  const Status refused = raw.Call(hello);
  EXPECT_EQ(refused.code(), StatusCode::kInvalidArgument) << refused.ToString();
  EXPECT_NE(refused.message().find("client instance must be at most 255 bytes (got 256)"),
            std::string::npos)
      << refused.ToString();
  h.setInstance(std::string(255, 'i'));
  EXPECT_TRUE(raw.Call(hello).ok());
  EXPECT_EQ(
      net::Connection::Open({.broker = broker_->endpoint(), .instance = std::string(256, 'i')})
          .status()
          .code(),
      StatusCode::kInvalidArgument);
}

// The routing id is what a connection's replies go to; logging it would
// hand it to whoever reads the logs. Lines about a client name its hello id.
TEST_F(ClientIdentity, LogsNameAClientByItsIdNeverByItsRoutingId) {
  testing::LogCapture log("broker");
  const std::string secret = "routing-secret-7f3a9c";
  RawClient client(broker_->endpoint(), secret);
  ASSERT_TRUE(Hello(client, "named-consumer", wire::Role::CONSUMER, "g").ok());
  Producer producer({.broker = broker_->endpoint()});
  ASSERT_TRUE(producer.Start().ok());
  ASSERT_TRUE(producer.Send({.topic = "t", .body = "leased"}).ok());
  wire::OutFrame pull(2);
  auto p = pull.envelope().initPull();
  p.setGroup("g");
  p.initTopics(1).set(0, "t");
  p.setMaxMessages(1);
  client.Send(pull);
  auto pulled = client.Receive();
  ASSERT_TRUE(pulled.has_value());
  ASSERT_EQ(pulled->envelope().getPullOk().getMessages().size(), 1u);

  wire::OutFrame goodbye(3);
  goodbye.envelope().setGoodbye();
  ASSERT_TRUE(client.Call(goodbye).ok());
  EXPECT_TRUE(testing::WaitFor([&] {
    return log.text().find("client named-consumer said goodbye: 1 leased messages given back") !=
           std::string::npos;
  })) << log.text();
  EXPECT_EQ(log.text().find(secret), std::string::npos) << log.text();
}

}  // namespace
}  // namespace txmq
