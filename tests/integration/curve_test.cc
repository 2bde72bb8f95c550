// CURVE and the ACL against an embedded broker over real ZeroMQ CURVE:
// who gets in, what each principal may do, and that a refused request
// changes nothing.
#include <gtest/gtest.h>

#include <sstream>

#include <atomic>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <thread>
#include <zmq.hpp>

#include "protocol/src/connection.h"
#include "protocol/src/log.h"
#include "protocol/src/message_codec.h"
#include "protocol/src/util.h"
#include "tests/integration/curve_principals.h"
#include "tests/integration/raw_client.h"
#include "tests/testutil/admin_client.h"
#include "tests/testutil/secure_world.h"
#include "tests/testutil/testutil.h"
#include "txmq/consumer.h"
#include "txmq/producer.h"
#include "txmq/transaction_producer.h"

namespace txmq {
namespace {

using namespace std::chrono_literals;
using testing::AdminClient;
using testing::Principals;
using testing::SecureWorld;
using testing::TempDir;
using testing::TestPrincipal;
using testing::WaitFor;

class Curve : public ::testing::Test {
 protected:
  void SetUp() override {
    world_ = std::make_unique<SecureWorld>(dir_.path(), Principals());
    options_ = testing::TestBrokerOptions(dir_.Sub("data"));
    world_->Secure(options_);
    broker_ = testing::StartBroker(options_);
    ASSERT_NE(broker_, nullptr);
    admin_ = std::make_unique<AdminClient>(broker_->endpoint(), world_->client_keys("ops"));
  }

  ProducerOptions ProducerAs(const std::string& who, const std::string& group = "default") {
    return {.broker = broker_->endpoint(),
            .curve_key = world_->key_file(who),
            .server_key = world_->broker_pub_file(),
            .group = group,
            .send_timeout = 2000ms,
            .retries = 0};
  }

  // A raw client connection of principal `who` (role admin unless said).
  std::unique_ptr<net::Connection> ConnectAs(const std::string& who,
                                             wire::Role role = wire::Role::ADMIN,
                                             const std::string& group = "") {
    auto c = net::Connection::Open({.broker = broker_->endpoint(),
                                    .role = role,
                                    .group = group,
                                    .curve = world_->client_keys(who)});
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    return std::move(c.value());
  }

  static Result<wire::Frame> Call(net::Connection& c,
                                  const std::function<void(wire::Envelope::Builder)>& fill) {
    auto request = c.NewRequest();
    fill(request.envelope());
    return c.CallSync(std::move(request), 10s);
  }

  TempDir dir_;
  std::unique_ptr<SecureWorld> world_;
  BrokerOptions options_;
  std::unique_ptr<Broker> broker_;
  std::unique_ptr<AdminClient> admin_;
};

TEST_F(Curve, AClientWithAKeyInTheAclSendsAndReceives) {
  Producer producer(ProducerAs("orders"));
  ASSERT_TRUE(producer.Start().ok());
  auto sent = producer.Send({.topic = "orders", .body = "paid"});
  ASSERT_TRUE(sent.ok()) << sent.status().ToString();

  std::atomic<int> got{0};
  Consumer consumer({.broker = broker_->endpoint(),
                     .curve_key = world_->key_file("billing"),
                     .server_key = world_->broker_pub_file(),
                     .group = "billing",
                     .long_poll = 500ms});
  ASSERT_TRUE(consumer
                  .Subscribe("orders",
                             [&](const Received& m) {
                               if (m.body == "paid") got++;
                               return ConsumeResult::Success();
                             })
                  .ok());
  ASSERT_TRUE(consumer.Start().ok());
  EXPECT_TRUE(WaitFor([&] { return got.load() == 1; }));
  consumer.Shutdown();
}

TEST_F(Curve, PlaintextClientsAreRefused) {
  ProducerOptions plain = ProducerAs("orders");
  plain.curve_key.clear();
  plain.server_key.clear();
  Producer producer(plain);
  ASSERT_TRUE(producer.Start().ok());
  auto sent = producer.Send({.topic = "orders", .body = "x"});
  EXPECT_FALSE(sent.ok());

  testing::RawClient raw(broker_->endpoint());
  wire::OutFrame status(1);
  status.envelope().setStatus();
  raw.Send(status);
  EXPECT_FALSE(raw.Receive(1s).has_value()) << "a plaintext connection got an answer";
  EXPECT_EQ(admin_->TopicMessages("orders"), -1) << "nothing was stored";
}

TEST_F(Curve, AKeyTheAclDoesNotNameIsRefusedWithAClearError) {
  world_->MakeStranger("stranger");
  ProducerOptions o = ProducerAs("orders");
  o.curve_key = world_->key_file("stranger");
  Producer producer(o);
  ASSERT_TRUE(producer.Start().ok());
  auto sent = producer.Send({.topic = "orders", .body = "x"});
  ASSERT_FALSE(sent.ok());
  EXPECT_EQ(sent.status().code(), StatusCode::kPermissionDenied) << sent.status().ToString();
  EXPECT_NE(sent.status().message().find("refused this client's CURVE key"), std::string::npos)
      << sent.status().ToString();
  EXPECT_EQ(admin_->TopicMessages("orders"), -1);
}

TEST_F(Curve, AWrongServerKeyNeverConnects) {
  world_->MakeStranger("fake-broker");
  ProducerOptions o = ProducerAs("orders");
  o.server_key = world_->pub_file("fake-broker");
  Producer producer(o);
  ASSERT_TRUE(producer.Start().ok());
  auto sent = producer.Send({.topic = "orders", .body = "x"});
  ASSERT_FALSE(sent.ok());
  EXPECT_EQ(admin_->TopicMessages("orders"), -1);
}

// Every verb, asked by a principal without the right: PERMISSION_DENIED,
// and afterwards the broker holds exactly what it held before.
TEST_F(Curve, EveryVerbOfAWrongPrincipalIsRefusedAndChangesNothing) {
  // What there is to protect: a message, an open transaction of "orders",
  // and billing's lease on the message.
  auto orders = ConnectAs("orders");
  ASSERT_TRUE(Call(*orders, [](wire::Envelope::Builder e) {
                auto m = e.initSend().initMessage();
                m.setId(NewUuidV7());
                m.setTopic("orders");
                m.setBody(kj::StringPtr("first").asBytes());
              }).ok());
  const std::string tx = NewUuidV7();
  auto half = Call(*orders, [&](wire::Envelope::Builder e) {
    auto h = e.initSendHalf();
    h.setTransactionId(tx);
    h.setProducerGroup("orders");
    auto m = h.initMessages(1)[0];
    m.setId(NewUuidV7());
    m.setTopic("orders");
    m.setBody(kj::StringPtr("half").asBytes());
  });
  ASSERT_TRUE(half.ok()) << half.status().ToString();
  auto billing = ConnectAs("billing", wire::Role::CONSUMER, "billing");
  auto pulled = Call(*billing, [](wire::Envelope::Builder e) {
    auto p = e.initPull();
    p.setGroup("billing");
    p.initTopics(1).set(0, "orders");
    p.setVisibilityTimeoutMs(600'000);
    p.setWaitMs(5000);
  });
  ASSERT_TRUE(pulled.ok()) << pulled.status().ToString();
  ASSERT_EQ(pulled->envelope().getPullOk().getMessages().size(), 1u);
  auto receipt = pulled->envelope().getPullOk().getMessages()[0].getReceipt();
  auto fill_receipt = [receipt](wire::Receipt::Builder r) {
    r.setTopic(receipt.getTopic());
    r.setQueue(receipt.getQueue());
    r.setOffset(receipt.getOffset());
    r.setRetryId(receipt.getRetryId());
    r.setLeaseId(receipt.getLeaseId());
  };

  struct Row {
    std::string what;
    std::string who;
    std::function<void(wire::Envelope::Builder)> fill;
  };
  const std::vector<Row> rows = {
      {"send to a topic not in its produce list", "billing",
       [](auto e) {
         auto m = e.initSend().initMessage();
         m.setId(NewUuidV7());
         m.setTopic("orders");
       }},
      {"send to another topic than its own", "orders",
       [](auto e) {
         auto m = e.initSend().initMessage();
         m.setId(NewUuidV7());
         m.setTopic("secret");
       }},
      {"send a half for another producer group", "billing",
       [](auto e) {
         auto h = e.initSendHalf();
         h.setTransactionId(NewUuidV7());
         h.setProducerGroup("orders");
         auto m = h.initMessages(1)[0];
         m.setId(NewUuidV7());
         m.setTopic("orders");
       }},
      {"send a half into a topic not in its produce list", "orders",
       [](auto e) {
         auto h = e.initSendHalf();
         h.setTransactionId(NewUuidV7());
         h.setProducerGroup("orders");
         auto m = h.initMessages(1)[0];
         m.setId(NewUuidV7());
         m.setTopic("secret");
       }},
      {"end another group's transaction", "mallory",
       [tx](auto e) {
         auto end = e.initEndTransaction();
         end.setTransactionId(tx);
         end.setOutcome(wire::TxOutcome::COMMIT);
       }},
      {"end it claiming to be an operator", "billing",
       [tx](auto e) {
         auto end = e.initEndTransaction();
         end.setTransactionId(tx);
         end.setOutcome(wire::TxOutcome::ROLLBACK);
         end.setOperator("root");
       }},
      {"end it riding on its own half", "payments",
       [tx](auto e) {
         auto h = e.initSendHalf();
         h.setTransactionId(NewUuidV7());
         h.setProducerGroup("payments");
         auto m = h.initMessages(1)[0];
         m.setId(NewUuidV7());
         m.setTopic("payments");
         auto end = h.initEnds(1)[0];
         end.setTransactionId(tx);
         end.setOutcome(wire::TxOutcome::COMMIT);
       }},
      {"answer another group's check", "mallory",
       [tx](auto e) {
         auto r = e.initCheckReply();
         r.setTransactionId(tx);
         r.setOutcome(wire::TxOutcome::COMMIT);
       }},
      {"register as a checker of another group", "mallory",
       [](auto e) {
         auto h = e.initHello();
         h.setClientId(NewUuidV7());
         h.setRole(wire::Role::PRODUCER);
         h.setGroup("orders");
         h.setChecker(true);
         h.setVersion(wire::PROTOCOL_VERSION);
       }},
      {"register as a consumer of another group", "mallory",
       [](auto e) {
         auto h = e.initHello();
         h.setClientId(NewUuidV7());
         h.setRole(wire::Role::CONSUMER);
         h.setGroup("billing");
         h.setVersion(wire::PROTOCOL_VERSION);
       }},
      {"pull as another group", "orders",
       [](auto e) {
         auto p = e.initPull();
         p.setGroup("billing");
         p.initTopics(1).set(0, "orders");
       }},
      {"ack another group's delivery", "mallory",
       [&](auto e) {
         auto a = e.initAck();
         a.setGroup("billing");
         fill_receipt(a.initReceipts(1)[0]);
       }},
      {"nack another group's delivery", "mallory",
       [&](auto e) {
         auto n = e.initNack();
         n.setGroup("billing");
         n.setMaxReconsumeTimes(1);
         fill_receipt(n.initReceipts(1)[0]);
       }},
      {"extend another group's lease", "mallory",
       [&](auto e) {
         auto x = e.initExtendLease();
         x.setGroup("billing");
         x.setFailed(true);
         fill_receipt(x.initReceipts(1)[0]);
       }},
      {"create a topic", "orders",
       [](auto e) {
         auto c = e.initCreateTopic();
         c.setTopic("made-by-orders");
         c.setOperator("root");
       }},
      {"ask for a check now", "orders",
       [tx](auto e) {
         auto c = e.initCheckNow();
         c.setTransactionId(tx);
       }},
      {"resend dead letters", "billing",
       [](auto e) {
         auto r = e.initDlqResend();
         r.setGroup("billing");
         r.setAll(true);
       }},
      {"list transactions", "billing", [](auto e) { e.initListTransactions().setLimit(10); }},
      {"show a transaction", "orders", [tx](auto e) { e.setShowTransaction(tx); }},
      {"read messages", "billing", [](auto e) { e.initFindMessages().setTopic("orders"); }},
      {"list topics", "mallory", [](auto e) { e.setTopicList(); }},
      {"list groups", "mallory", [](auto e) { e.setGroupList(); }},
      {"list dead letters", "mallory", [](auto e) { e.initDlqList().setGroup("billing"); }},
      // The read-only verbs that show bodies or names: operators' only.
      {"show a message", "billing",
       [](auto e) { e.initShowMessage().setMessageId("any-message-id"); }},
      {"peek into a topic", "billing",
       [](auto e) {
         auto p = e.initPeek();
         p.setTopic("orders");
         p.setMaxMessages(10);
       }},
      {"show a topic", "mallory", [](auto e) { e.setTopicShow("orders"); }},
      {"show a group", "mallory", [](auto e) { e.setGroupShow("billing"); }},
      {"show a dead letter", "billing",
       [](auto e) {
         auto d = e.initDlqShow();
         d.setGroup("billing");
         d.setMessageId("any-message-id");
       }},
      // The lifecycle verbs: refused by RequireAdmin (admin_auth.h).
      {"delete a topic", "orders", [](auto e) { e.initLifecycle().setDeleteTopic("orders"); }},
      {"delete a group", "billing", [](auto e) { e.initLifecycle().setDeleteGroup("billing"); }},
      {"reset a group", "billing",
       [](auto e) {
         auto r = e.initLifecycle();
         r.setForce(true);
         auto g = r.initResetGroup();
         g.setGroup("billing");
         g.setTopic("orders");
         g.setTo(wire::ResetTarget::LATEST);
       }},
      {"purge dead letters", "billing",
       [](auto e) {
         auto p = e.initLifecycle().initPurgeDlq();
         p.setGroup("billing");
         p.setAll(true);
       }},
      // A consumer may ask where a topic's queues are, never place one.
      {"place a topic through a route", "billing",
       [](auto e) {
         auto r = e.initRoute();
         r.setTopic("placed-by-billing");
         r.setCreate(true);
       }},
      {"ask a route with no right at all", "mallory",
       [](auto e) { e.initRoute().setTopic("orders"); }},
  };
  std::map<std::string, std::unique_ptr<net::Connection>> connections;
  for (const Row& row : rows) {
    auto& c = connections[row.who];
    if (!c) c = ConnectAs(row.who);
    auto r = Call(*c, row.fill);
    ASSERT_FALSE(r.ok()) << row.who << " could " << row.what;
    EXPECT_EQ(r.status().code(), StatusCode::kPermissionDenied)
        << row.who << " / " << row.what << ": " << r.status().ToString();
    EXPECT_NE(r.status().message().find("'" + row.who + "'"), std::string::npos)
        << "the refusal names the principal: " << r.status().ToString();
  }

  // Nothing changed.
  EXPECT_EQ(admin_->TopicMessages("orders"), 1);
  EXPECT_EQ(admin_->TopicMessages("secret"), -1);
  EXPECT_EQ(admin_->TopicMessages("payments"), -1);
  EXPECT_EQ(admin_->TopicMessages("made-by-orders"), -1);
  auto open = admin_->ListTransactions();
  ASSERT_EQ(open.size(), 1u);
  EXPECT_EQ(open[0].id, tx);
  EXPECT_EQ(open[0].state, wire::TxState::PREPARED);
  auto acked = Call(*billing, [&](wire::Envelope::Builder e) {
    auto a = e.initAck();
    a.setGroup("billing");
    fill_receipt(a.initReceipts(1)[0]);
  });
  ASSERT_TRUE(acked.ok()) << acked.status().ToString();
  EXPECT_EQ(acked->envelope().getAckOk().getAcked(), 1u) << "billing's lease was untouched";

  // The table is not vacuous: the rightful principals may do these things.
  auto ops = ConnectAs("ops");
  EXPECT_TRUE(Call(*ops, [](auto e) { e.initCreateTopic().setTopic("made-by-ops"); }).ok());
  EXPECT_TRUE(Call(*ops, [](auto e) { e.setGroupList(); }).ok());
  auto dry = Call(*ops, [](auto e) {
    auto r = e.initLifecycle();
    r.setDryRun(true);
    r.setDeleteTopic("made-by-ops");
  });
  EXPECT_TRUE(dry.ok()) << "an admin may delete topics: " << dry.status().ToString();
  auto route = Call(*billing, [](auto e) { e.initRoute().setTopic("orders"); });
  EXPECT_TRUE(route.ok()) << "a consumer may ask where queues are: " << route.status().ToString();
  auto status = Call(*connections["mallory"], [](auto e) { e.setStatus(); });
  EXPECT_TRUE(status.ok()) << "status is for every principal: " << status.status().ToString();
  if (status.ok()) {
    // But not the metrics, which name every topic and group.
    EXPECT_FALSE(status->envelope().getStatusOk().hasMetrics())
        << "a principal without admin read every topic's and group's metrics";
  }
  auto admin_status = Call(*ops, [](auto e) { e.setStatus(); });
  ASSERT_TRUE(admin_status.ok()) << admin_status.status().ToString();
  EXPECT_GT(admin_status->envelope().getStatusOk().getMetrics().getQueues().size(), 0u);
  auto ended = Call(*orders, [tx](auto e) {
    auto end = e.initEndTransaction();
    end.setTransactionId(tx);
    end.setOutcome(wire::TxOutcome::ROLLBACK);
  });
  ASSERT_TRUE(ended.ok()) << ended.status().ToString();
  EXPECT_EQ(ended->envelope().getEndTransactionOk().getState(), wire::TxState::ROLLED_BACK);
}

TEST_F(Curve, ARevokedKeyIsRefusedAfterTheAclIsReloaded) {
  Producer producer(ProducerAs("orders"));
  ASSERT_TRUE(producer.Start().ok());
  ASSERT_TRUE(producer.Send({.topic = "orders", .body = "before"}).ok());

  auto without_orders = Principals();
  std::erase_if(without_orders, [](const TestPrincipal& p) { return p.name == "orders"; });
  world_->WriteAcl(without_orders);
  ASSERT_TRUE(broker_->ReloadAcl().ok());

  auto refused = producer.Send({.topic = "orders", .body = "after"});
  ASSERT_FALSE(refused.ok()) << "a connection open before the reload keeps no rights";
  EXPECT_EQ(refused.status().code(), StatusCode::kPermissionDenied) << refused.status().ToString();

  Producer fresh(ProducerAs("orders"));
  ASSERT_TRUE(fresh.Start().ok());
  auto again = fresh.Send({.topic = "orders", .body = "after"});
  ASSERT_FALSE(again.ok()) << "a new connection with the revoked key got in";
  EXPECT_EQ(again.status().code(), StatusCode::kPermissionDenied) << again.status().ToString();
  EXPECT_EQ(admin_->TopicMessages("orders"), 1);

  // A bad file keeps the ACL in force.
  std::ofstream(world_->acl_file()) << "{not json";
  EXPECT_FALSE(broker_->ReloadAcl().ok());
  Producer pay(ProducerAs("payments"));
  ASSERT_TRUE(pay.Start().ok());
  EXPECT_TRUE(pay.Send({.topic = "payments", .body = "still allowed"}).ok());
}

// A client id belongs to the connection and principal that registered it:
// another principal saying hello with it is refused, and the owner keeps it.
TEST_F(Curve, AClientIdRegisteredByOnePrincipalIsNotTakenByAnother) {
  auto owner = net::Connection::Open({.broker = broker_->endpoint(),
                                      .client_id = "orders-producer-1",
                                      .role = wire::Role::PRODUCER,
                                      .group = "orders",
                                      .curve = world_->client_keys("orders")});
  ASSERT_TRUE(owner.ok()) << owner.status().ToString();
  auto beat = [](net::Connection& c) {
    return Call(c, [](wire::Envelope::Builder e) { e.setHeartbeat(); });
  };
  auto registered = beat(**owner);
  ASSERT_TRUE(registered.ok()) << registered.status().ToString();
  ASSERT_TRUE(registered->envelope().getHeartbeatOk().getRegistered());

  // The library says hello with the id it is given; the broker refuses it.
  auto other = net::Connection::Open({.broker = broker_->endpoint(),
                                      .client_id = "orders-producer-1",
                                      .role = wire::Role::PRODUCER,
                                      .group = "payments",
                                      .curve = world_->client_keys("payments")});
  ASSERT_TRUE(other.ok()) << other.status().ToString();
  auto theirs = beat(**other);
  ASSERT_TRUE(theirs.ok()) << theirs.status().ToString();
  EXPECT_FALSE(theirs->envelope().getHeartbeatOk().getRegistered())
      << "another principal registered under the owner's id";
  auto still = beat(**owner);
  ASSERT_TRUE(still.ok()) << still.status().ToString();
  EXPECT_TRUE(still->envelope().getHeartbeatOk().getRegistered()) << "the owner lost its id";
}

TEST_F(Curve, ChecksGoOnlyToConnectionsOfAPrincipalOfTheGroup) {
  std::atomic<int> asked{0};
  TransactionProducer checker(ProducerAs("orders", "orders"), [&](const CheckRequest&) {
    asked++;
    return TxState::kUnknown;
  });
  ASSERT_TRUE(checker.Start().ok());
  auto r = checker.SendInTransaction({.topic = "orders", .body = "undecided"},
                                     [](const Message&) { return TxState::kUnknown; });
  ASSERT_TRUE(r.ok()) << r.status.ToString();
  ASSERT_TRUE(WaitFor([&] { return asked.load() > 0; })) << "the group's own checker is asked";

  // The principal loses the group: its connection gets no more checks,
  // and the transaction waits for a producer that may answer.
  auto reduced = Principals();
  for (auto& p : reduced) {
    if (p.name == "orders") p.producer_groups.clear();
  }
  world_->WriteAcl(reduced);
  ASSERT_TRUE(broker_->ReloadAcl().ok());
  const int before = asked.load();
  ASSERT_TRUE(WaitFor(
      [&] {
        auto info = admin_->Show(r.transaction_id);
        return info.ok() && info->last_answer == wire::CheckAnswer::NO_PRODUCER;
      },
      20s));
  EXPECT_LE(asked.load(), before + 1) << "at most a check already on its way when revoked";
}

TEST_F(Curve, TheAuditTrailNamesThePrincipalNotTheClaimedOperator) {
  const std::string audit = dir_.Sub("audit.log");
  ASSERT_TRUE(SetAuditFile(audit).ok());
  auto ops = ConnectAs("ops");
  ASSERT_TRUE(Call(*ops, [](auto e) {
                auto c = e.initCreateTopic();
                c.setTopic("audited");
                c.setOperator("somebody-else");
              }).ok());
  ASSERT_TRUE(
      WaitFor([&] { return testing::ReadFile(audit).find("topic=audited") != std::string::npos; }));
  const std::string line = testing::ReadFile(audit);
  EXPECT_NE(line.find("operator='somebody-else' principal='ops'"), std::string::npos) << line;
  ASSERT_TRUE(SetAuditFile("").ok());
}

}  // namespace
}  // namespace txmq
