// Bad input gets a clear error, and the broker keeps serving.
#include <gtest/gtest.h>

#include <cstring>
#include <functional>
#include <future>
#include <map>
#include <mutex>
#include <random>
#include <thread>

#include "protocol/src/connection.h"
#include "protocol/src/message_codec.h"
#include "tests/integration/raw_client.h"
#include "tests/testutil/admin_client.h"
#include "tests/testutil/testutil.h"
#include "txmq/consumer.h"
#include "txmq/producer.h"
#include "txmq/properties.h"

namespace txmq {
namespace {

using namespace std::chrono_literals;
using testing::RawClient;

class BadInput : public ::testing::Test {
 protected:
  void SetUp() override {
    options_ = testing::TestBrokerOptions(dir_.Sub("data"));
    options_.max_message_bytes = 64 * 1024;
    broker_ = testing::StartBroker(options_);
    ASSERT_NE(broker_, nullptr);
  }

  // The broker still answers a well-formed request from a new client.
  void ExpectServing() {
    RawClient probe(broker_->endpoint());
    wire::OutFrame f(1);
    f.envelope().setStatus();
    probe.Send(f);
    auto reply = probe.Receive();
    ASSERT_TRUE(reply.has_value()) << "broker stopped answering";
    EXPECT_EQ(reply->envelope().which(), wire::Envelope::STATUS_OK);
  }

  uint64_t BadFrames() {
    RawClient probe(broker_->endpoint());
    wire::OutFrame f(1);
    f.envelope().setStatus();
    probe.Send(f);
    auto reply = probe.Receive();
    return reply ? reply->envelope().getStatusOk().getBadFrames() : 0;
  }

  static wire::OutFrame SendRequest(const std::string& topic, const std::string& body,
                                    const std::string& id = "m-1") {
    wire::OutFrame f(9);
    auto m = f.envelope().initSend().initMessage();
    m.setId(id);
    m.setTopic(topic);
    m.setBody(wire::AsData(body));
    return f;
  }

  testing::TempDir dir_;
  BrokerOptions options_;
  std::unique_ptr<Broker> broker_;
};

TEST_F(BadInput, GarbageBytesGetACorruptionError) {
  RawClient c(broker_->endpoint());
  const char junk[] = "this is not a cap'n proto frame at all!!";  // 40 bytes
  c.SendBytes(junk, 40);
  auto reply = c.Receive();
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(wire::StatusOf(reply->envelope()).code(), StatusCode::kCorruption);
  EXPECT_EQ(reply->envelope().getRequestId(), 0u);
  c.SendBytes("abc", 3);  // not even whole words
  reply = c.Receive();
  ASSERT_TRUE(reply.has_value());
  EXPECT_NE(wire::StatusOf(reply->envelope()).message().find("8-byte words"), std::string::npos);
  ExpectServing();
}

TEST_F(BadInput, TruncatedFrameGetsAnError) {
  wire::OutFrame f = SendRequest("orders", std::string(1000, 'x'));
  zmq::message_t whole = f.Encode();
  RawClient c(broker_->endpoint());
  c.SendBytes(whole.data(), whole.size() - 512);
  auto reply = c.Receive();
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(wire::StatusOf(reply->envelope()).code(), StatusCode::kCorruption);
  ExpectServing();
}

TEST_F(BadInput, MultipartRequestGetsAnError) {
  RawClient c(broker_->endpoint());
  wire::OutFrame f(5);
  f.envelope().setStatus();
  c.socket().send(f.Encode(), zmq::send_flags::sndmore);
  c.socket().send(zmq::str_buffer("extra"), zmq::send_flags::none);
  auto reply = c.Receive();
  ASSERT_TRUE(reply.has_value());
  EXPECT_NE(wire::StatusOf(reply->envelope()).message().find("exactly one frame"),
            std::string::npos);
  ExpectServing();
}

TEST_F(BadInput, OversizedFrameIsCutOffAndOthersAreServed) {
  RawClient c(broker_->endpoint());
  std::string huge(4 * 1024 * 1024, 'x');  // far above 64 KiB + envelope
  c.SendBytes(huge.data(), huge.size());
  EXPECT_FALSE(c.Receive(500ms).has_value()) << "ZeroMQ drops the connection, no reply";
  ExpectServing();
}

TEST_F(BadInput, MessageAboveTheLimitButInsideTheFrameIsRefusedTooLarge) {
  RawClient c(broker_->endpoint());
  wire::OutFrame f = SendRequest("orders", std::string(64 * 1024 + 1, 'x'));
  Status s = c.Call(f);
  EXPECT_EQ(s.code(), StatusCode::kTooLarge) << s.ToString();
  EXPECT_NE(s.message().find("65537"), std::string::npos) << s.message();
  ExpectServing();
}

TEST_F(BadInput, AnOversizedFrameDropsOnlyItsOwnConnection) {
  // A library producer keeps sending, with calls in flight, while another
  // client sends a frame above the socket's limit.
  Producer p({.broker = broker_->endpoint(), .group = "bystander"});
  ASSERT_TRUE(p.Start().ok());
  std::atomic<bool> stop{false};
  std::atomic<int> sent{0}, failed{0};
  std::thread sender([&] {
    while (!stop) {
      std::vector<std::future<Result<SendResult>>> batch;
      for (int i = 0; i < 20; ++i) batch.push_back(p.SendAsync({.topic = "calm", .body = "x"}));
      for (auto& f : batch) {
        auto r = f.get();
        if (r.ok()) {
          ++sent;
        } else {
          ++failed;
          ADD_FAILURE() << r.status().ToString();
        }
      }
    }
  });
  ASSERT_TRUE(testing::WaitFor([&] { return sent.load() >= 100; }));
  for (int i = 0; i < 3; ++i) {
    RawClient c(broker_->endpoint());
    std::string huge(wire::MaxFrameBytes(options_.max_message_bytes) + 8, 'x');
    c.SendBytes(huge.data(), huge.size());
    EXPECT_FALSE(c.Receive(300ms).has_value()) << "ZeroMQ drops that connection, no reply";
  }
  const int before = sent.load();
  ASSERT_TRUE(testing::WaitFor([&] { return sent.load() >= before + 100; }));
  stop = true;
  sender.join();
  EXPECT_EQ(failed.load(), 0);
  ExpectServing();
}

TEST_F(BadInput, TheClientRefusesAFrameAboveTheBrokersLimitWithoutSendingIt) {
  auto connection = net::Connection::Open({.broker = broker_->endpoint()});
  ASSERT_TRUE(connection.ok());
  net::Connection& c = **connection;
  ASSERT_TRUE(testing::WaitFor([&] { return c.broker_max_message_bytes() != 0; }));
  EXPECT_EQ(c.broker_max_frame_bytes(), wire::MaxFrameBytes(options_.max_message_bytes))
      << "announced in the hello reply";
  wire::OutFrame big = SendRequest("orders", std::string(c.broker_max_frame_bytes(), 'x'));
  const auto started = SteadyClock::now();
  auto r = c.CallSync(std::move(big), 5s);
  EXPECT_LT(SteadyClock::now() - started, 1s);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kTooLarge) << r.status().ToString();
  EXPECT_NE(r.status().message().find("nothing was sent"), std::string::npos);
  wire::OutFrame status(c.NewRequest().request_id());
  status.envelope().setStatus();
  auto after = c.CallSync(std::move(status), 5s);
  EXPECT_TRUE(after.ok()) << after.status().ToString();
}

TEST_F(BadInput, OneSizeRuleForASendAndATransaction) {
  // max_message_bytes is 64 KiB here. User properties count, reserved ones
  // do not; a transaction's messages count together.
  RawClient c(broker_->endpoint());
  wire::OutFrame with_props = SendRequest("orders", std::string(60 * 1024, 'x'), "m-props");
  auto props = with_props.envelope().getSend().getMessage().initProperties(2);
  props[0].setKey("note");
  props[0].setValue(std::string(5000, 'n'));
  props[1].setKey(property::kCompensateTo);
  props[1].setValue("payment-failures");
  Status s = c.Call(with_props);
  EXPECT_EQ(s.code(), StatusCode::kTooLarge) << s.ToString();
  EXPECT_NE(s.message().find(std::to_string(60 * 1024 + 4 + 5000)), std::string::npos)
      << s.ToString();

  wire::OutFrame reserved_only = SendRequest("orders", std::string(64 * 1024, 'x'), "m-res");
  auto r = reserved_only.envelope().getSend().getMessage().initProperties(2);
  r[0].setKey(property::kTransactionId);
  r[0].setValue("tx-1");
  r[1].setKey(property::kProducerGroup);
  r[1].setValue("orders");
  s = c.Call(reserved_only);
  EXPECT_TRUE(s.ok()) << s.ToString();

  wire::OutFrame made_up = SendRequest("orders", "x", "m-made-up");
  auto m = made_up.envelope().getSend().getMessage().initProperties(1);
  m[0].setKey("txmq.made-up");
  s = c.Call(made_up);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("reserved"), std::string::npos) << s.ToString();

  wire::OutFrame half(11);
  auto h = half.envelope().initSendHalf();
  h.setTransactionId("tx-too-big");
  h.setProducerGroup("orders");
  auto list = h.initMessages(2);
  for (unsigned i = 0; i < 2; ++i) {
    list[i].setId("half-" + std::to_string(i));
    list[i].setTopic("orders");
    const std::string body(40 * 1024, 'h');
    list[i].setBody(wire::AsData(body));
  }
  s = c.Call(half);
  EXPECT_EQ(s.code(), StatusCode::kTooLarge) << s.ToString();
  EXPECT_NE(s.message().find(std::to_string(80 * 1024)), std::string::npos) << s.ToString();
  ExpectServing();
}

TEST_F(BadInput, InvalidNamesAndIdsAreRefusedNamingTheValue) {
  RawClient c(broker_->endpoint());
  wire::OutFrame bad_topic = SendRequest("no spaces please", "x");
  Status s = c.Call(bad_topic);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("'no spaces please'"), std::string::npos) << s.message();

  wire::OutFrame system_topic = SendRequest("%DLQ%group", "x");
  EXPECT_EQ(c.Call(system_topic).code(), StatusCode::kInvalidArgument);

  wire::OutFrame empty_id = SendRequest("orders", "x", "");
  EXPECT_EQ(c.Call(empty_id).code(), StatusCode::kInvalidArgument);
  wire::OutFrame spaced_id = SendRequest("orders", "x", "has space");
  EXPECT_EQ(c.Call(spaced_id).code(), StatusCode::kInvalidArgument);

  wire::OutFrame reserved = SendRequest("orders", "x");
  auto props = reserved.envelope().getSend().getMessage().initProperties(1);
  props[0].setKey(property::kDeadLetterTopic);
  props[0].setValue("forged");
  s = c.Call(reserved);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("reserved"), std::string::npos);

  wire::OutFrame pull(3);
  auto p = pull.envelope().initPull();
  p.setGroup("bad group");
  p.initTopics(1).set(0, "orders");
  s = c.Call(pull);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("'bad group'"), std::string::npos);

  wire::OutFrame no_topics(4);
  no_topics.envelope().initPull().setGroup("g");
  EXPECT_EQ(c.Call(no_topics).code(), StatusCode::kInvalidArgument);

  wire::OutFrame negative_delay = SendRequest("orders", "x", "m-delay");
  negative_delay.envelope().getSend().getMessage().setDelayMs(-5);
  EXPECT_EQ(c.Call(negative_delay).code(), StatusCode::kInvalidArgument);
  ExpectServing();
}

TEST_F(BadInput, UnknownOrMisdirectedRequestKindsAreRefused) {
  RawClient c(broker_->endpoint());
  wire::OutFrame response_as_request(6);
  response_as_request.envelope().initSendOk();
  Status s = c.Call(response_as_request);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("not one the broker serves"), std::string::npos);

  // A union discriminant from a future protocol version.
  wire::OutFrame future(7);
  future.envelope().setStatus();
  zmq::message_t bytes = future.Encode();
  // Layout: segment table (8 bytes), root pointer (8), data section: requestId
  // (8 bytes) then the 16-bit discriminant.
  uint16_t unknown = 999;
  std::memcpy(static_cast<char*>(bytes.data()) + 24, &unknown, 2);
  c.SendBytes(bytes.data(), bytes.size());
  auto reply = c.Receive();
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(wire::StatusOf(reply->envelope()).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(reply->envelope().getRequestId(), 7u);
  ExpectServing();
}

TEST_F(BadInput, HelloFromAnIncompatibleClientIsRefused) {
  RawClient c(broker_->endpoint(), "client-x");
  wire::OutFrame hello(1);
  auto h = hello.envelope().initHello();
  h.setClientId("client-x");
  h.setVersion(wire::PROTOCOL_VERSION + 1);
  EXPECT_EQ(c.Call(hello).code(), StatusCode::kFailedPrecondition);
  wire::OutFrame impostor(2);
  auto i = impostor.envelope().initHello();
  i.setClientId("someone-else");
  i.setVersion(wire::PROTOCOL_VERSION);
  EXPECT_EQ(c.Call(impostor).code(), StatusCode::kInvalidArgument);
}

TEST_F(BadInput, StaleOrForgedReceiptsChangeNothing) {
  RawClient c(broker_->endpoint());
  wire::OutFrame ack(1);
  auto a = ack.envelope().initAck();
  a.setGroup("g");
  auto r = a.initReceipts(2);
  r[0].setTopic("orders");
  r[0].setLeaseId(12345);
  r[1].setTopic("nope");
  r[1].setRetryId(77);
  c.Send(ack);
  auto reply = c.Receive();
  ASSERT_TRUE(reply.has_value());
  ASSERT_EQ(reply->envelope().which(), wire::Envelope::ACK_OK);
  EXPECT_EQ(reply->envelope().getAckOk().getAcked(), 0u);
  EXPECT_EQ(reply->envelope().getAckOk().getExpired(), 2u);
}

TEST_F(BadInput, AnotherClientsLiveLeaseCannotBeAckedOrNacked) {
  Producer p({.broker = broker_->endpoint()});
  ASSERT_TRUE(p.Start().ok());
  ASSERT_TRUE(p.Send({.topic = "orders", .body = "held"}).ok());
  auto consumer = [&](const std::string& id) {
    auto c = std::make_unique<RawClient>(broker_->endpoint(), id);
    wire::OutFrame hello(1);
    auto h = hello.envelope().initHello();
    h.setClientId(id);
    h.setRole(wire::Role::CONSUMER);
    h.setGroup("g");
    h.setVersion(wire::PROTOCOL_VERSION);
    EXPECT_TRUE(c->Call(hello).ok());
    return c;
  };
  auto holder = consumer("holder");
  auto other = consumer("other");
  wire::OutFrame pull(2);
  auto pr = pull.envelope().initPull();
  pr.setGroup("g");
  pr.initTopics(1).set(0, "orders");
  pr.setVisibilityTimeoutMs(600'000);
  holder->Send(pull);
  auto pulled = holder->Receive();
  ASSERT_TRUE(pulled.has_value());
  ASSERT_EQ(pulled->envelope().getPullOk().getMessages().size(), 1u);
  auto receipt = pulled->envelope().getPullOk().getMessages()[0].getReceipt();
  // The holder's own receipt, exactly, sent by another member of the group.
  auto fill = [&](wire::Receipt::Builder r) {
    r.setTopic(receipt.getTopic());
    r.setQueue(receipt.getQueue());
    r.setOffset(receipt.getOffset());
    r.setRetryId(receipt.getRetryId());
    r.setLeaseId(receipt.getLeaseId());
  };
  wire::OutFrame ack(3);
  ack.envelope().initAck().setGroup("g");
  fill(ack.envelope().getAck().initReceipts(1)[0]);
  other->Send(ack);
  auto reply = other->Receive();
  ASSERT_TRUE(reply.has_value());
  ASSERT_EQ(reply->envelope().which(), wire::Envelope::ACK_OK);
  EXPECT_EQ(reply->envelope().getAckOk().getAcked(), 0u) << "another client acked a live lease";
  EXPECT_EQ(reply->envelope().getAckOk().getExpired(), 1u);
  wire::OutFrame nack(4);
  nack.envelope().initNack().setGroup("g");
  fill(nack.envelope().getNack().initReceipts(1)[0]);
  other->Send(nack);
  reply = other->Receive();
  ASSERT_TRUE(reply.has_value());
  ASSERT_EQ(reply->envelope().which(), wire::Envelope::NACK_OK);
  EXPECT_EQ(reply->envelope().getNackOk().getRequeued(), 0u) << "another client failed a lease";
  EXPECT_EQ(reply->envelope().getNackOk().getExpired(), 1u);

  // The lease is still the holder's, and only the holder's ack counts.
  testing::AdminClient admin(broker_->endpoint());
  auto shown = admin.Call([](wire::Envelope::Builder e) { e.setGroupShow("g"); });
  ASSERT_TRUE(shown.ok());
  EXPECT_EQ(shown->envelope().getGroupShowOk().getInFlight(), 1u);
  wire::OutFrame own(5);
  own.envelope().initAck().setGroup("g");
  fill(own.envelope().getAck().initReceipts(1)[0]);
  holder->Send(own);
  reply = holder->Receive();
  ASSERT_TRUE(reply.has_value());
  ASSERT_EQ(reply->envelope().which(), wire::Envelope::ACK_OK);
  EXPECT_EQ(reply->envelope().getAckOk().getAcked(), 1u);
}

TEST_F(BadInput, AFloodOfGarbageIsCountedAndServingContinues) {
  RawClient c(broker_->endpoint());
  std::string junk(64, '\x5a');
  for (int i = 0; i < 2000; ++i) c.SendBytes(junk.data(), junk.size());
  EXPECT_TRUE(testing::WaitFor([&] { return BadFrames() >= 2000; }));
  ExpectServing();
}

TEST_F(BadInput, ClientVanishingMidCallDoesNotHurtTheBroker) {
  testing::AdminClient admin(broker_->endpoint());
  {
    // A long poll whose asker is gone before the answer. It is parked (the
    // broker has taken it: its group exists, and "vanish" has nothing yet)
    // before the asker goes, and waits long enough to be woken below.
    RawClient c(broker_->endpoint());
    wire::OutFrame pull(1);
    auto p = pull.envelope().initPull();
    p.setGroup("g");
    p.initTopics(1).set(0, "vanish");
    p.setWaitMs(25000);
    c.Send(pull);
    ASSERT_TRUE(testing::WaitFor([&] {
      return admin.Call([](wire::Envelope::Builder e) { e.setGroupShow("g"); }).ok();
    })) << "the long poll never reached the broker";
  }
  {
    // Sends whose sender is gone before their acknowledgements.
    RawClient c(broker_->endpoint(), NewUuidV7(), /*linger_ms=*/1000);
    for (int i = 0; i < 100; ++i) {
      wire::OutFrame send = SendRequest("vanish", "still stored", "vanished-" + std::to_string(i));
      c.Send(send);
    }
  }
  // The vanished sender's messages are stored in the broker's own time.
  ASSERT_TRUE(testing::WaitFor([&] { return admin.TopicMessages("vanish") == 100; }));
  ExpectServing();
  // They woke the parked pull, whose asker is gone: what it took is given
  // back at once, not held until the visibility timeout (10 s here) as if
  // a consumer had it.
  auto in_flight = [&] {
    auto shown = admin.Call([](wire::Envelope::Builder e) { e.setGroupShow("g"); });
    return shown.ok() ? static_cast<int64_t>(shown->envelope().getGroupShowOk().getInFlight()) : -1;
  };
  EXPECT_TRUE(testing::WaitFor([&] { return in_flight() == 0; }, 5s))
      << in_flight() << " messages leased to the vanished long poll";
  std::mutex mu;
  std::map<std::string, uint32_t> deliveries;  // body -> delivery count
  Consumer g({.broker = broker_->endpoint(), .group = "g", .long_poll = 300ms});
  ASSERT_TRUE(g.Subscribe("vanish", [&](const Received& m) {
                 std::lock_guard<std::mutex> lock(mu);
                 deliveries[m.id] = std::max(deliveries[m.id], m.delivery_count);
                 return ConsumeResult::Success();
               }).ok());
  ASSERT_TRUE(g.Start().ok());
  EXPECT_TRUE(testing::WaitFor(
      [&] {
        std::lock_guard<std::mutex> lock(mu);
        return deliveries.size() == 100;
      },
      5s))
      << "the group did not get every message before the visibility timeout";
  g.Shutdown();
  for (const auto& [id, count] : deliveries) {
    EXPECT_EQ(count, 1u) << id << ": an undelivered reply counted as a delivery";
  }
  Producer p({.broker = broker_->endpoint()});
  ASSERT_TRUE(p.Start().ok());
  auto r = p.Send({.topic = "vanish", .body = "x", .id = "vanished-0"});
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->duplicate) << "the vanished sender's message was stored";
}

TEST_F(BadInput, ConsumerThatDiesHoldingMessagesHasThemRedelivered) {
  Producer p({.broker = broker_->endpoint()});
  ASSERT_TRUE(p.Start().ok());
  for (int i = 0; i < 5; ++i)
    ASSERT_TRUE(p.Send({.topic = "jobs", .body = std::to_string(i)}).ok());
  {
    // Takes all five and dies: no ack, no goodbye.
    RawClient dying(broker_->endpoint(), "dying-consumer");
    wire::OutFrame hello(1);
    auto h = hello.envelope().initHello();
    h.setClientId("dying-consumer");
    h.setRole(wire::Role::CONSUMER);
    h.setGroup("workers");
    h.setVersion(wire::PROTOCOL_VERSION);
    ASSERT_TRUE(dying.Call(hello).ok());
    wire::OutFrame pull(2);
    auto pr = pull.envelope().initPull();
    pr.setGroup("workers");
    pr.initTopics(1).set(0, "jobs");
    pr.setMaxMessages(10);
    pr.setVisibilityTimeoutMs(600'000);  // only its death can free them
    dying.Send(pull);
    auto reply = dying.Receive();
    ASSERT_TRUE(reply.has_value());
    ASSERT_EQ(reply->envelope().getPullOk().getMessages().size(), 5u);
  }
  std::mutex mu;
  std::vector<Received> got;
  Consumer survivor({.broker = broker_->endpoint(), .group = "workers", .long_poll = 500ms});
  ASSERT_TRUE(survivor
                  .Subscribe("jobs",
                             [&](const Received& m) {
                               std::lock_guard<std::mutex> lock(mu);
                               got.push_back(m);
                               return ConsumeResult::Success();
                             })
                  .ok());
  ASSERT_TRUE(survivor.Start().ok());
  // client_timeout is 2 s in tests, then the 100 ms first backoff.
  ASSERT_TRUE(testing::WaitFor(
      [&] {
        std::lock_guard<std::mutex> lock(mu);
        return got.size() == 5;
      },
      15s));
  survivor.Shutdown();
  for (const Received& m : got) EXPECT_EQ(m.delivery_count, 2u);
}

TEST_F(BadInput, MutatedRequestsOfEveryKindNeverTakeTheBrokerDown) {
  // Well-formed requests of each kind, then thousands of bit-flipped,
  // truncated and overwritten copies: decodable ones reach the handlers with
  // nonsense in every field.
  std::vector<std::string> seeds;
  auto add = [&](const std::function<void(wire::Envelope::Builder)>& fill) {
    wire::OutFrame f(1);
    fill(f.envelope());
    zmq::message_t m = f.Encode();
    seeds.emplace_back(static_cast<const char*>(m.data()), m.size());
  };
  add([](wire::Envelope::Builder e) {
    auto m = e.initSend().initMessage();
    m.setId("m-1");
    m.setTopic("orders");
    m.setBody(wire::AsData("hello"));
    m.initProperties(1)[0].setKey("a");
  });
  add([](wire::Envelope::Builder e) {
    auto p = e.initPull();
    p.setGroup("g");
    p.initTopics(1).set(0, "orders");
    p.setWaitMs(0);
  });
  add([](wire::Envelope::Builder e) {
    auto a = e.initAck();
    a.setGroup("g");
    a.initReceipts(2)[0].setTopic("orders");
  });
  add([](wire::Envelope::Builder e) {
    auto n = e.initNack();
    n.setGroup("g");
    n.initReceipts(1)[0].setLeaseId(7);
  });
  add([](wire::Envelope::Builder e) {
    auto x = e.initExtendLease();
    x.setGroup("g");
    x.setFailed(true);
    x.initReceipts(2)[1].setLeaseId(7);
  });
  add([](wire::Envelope::Builder e) {
    auto h = e.initSendHalf();
    h.setTransactionId("tx-1");
    h.setProducerGroup("p");
    auto m = h.initMessages(1)[0];
    m.setId("h-1");
    m.setTopic("orders");
  });
  add([](wire::Envelope::Builder e) {
    auto t = e.initEndTransaction();
    t.setTransactionId("tx-1");
    t.setOutcome(wire::TxOutcome::COMMIT);
  });
  add([](wire::Envelope::Builder e) { e.initCheckReply().setTransactionId("tx-1"); });
  add([](wire::Envelope::Builder e) { e.initListTransactions().setLimit(5); });
  add([](wire::Envelope::Builder e) { e.initCheckNow().setStuckOnly(true); });
  add([](wire::Envelope::Builder e) { e.initCreateTopic().setTopic("made"); });
  add([](wire::Envelope::Builder e) { e.initFindMessages().setTopic("orders"); });
  add([](wire::Envelope::Builder e) { e.initDlqResend().setGroup("g"); });
  add([](wire::Envelope::Builder e) { e.initDlqList().setGroup("g"); });
  add([](wire::Envelope::Builder e) {
    auto h = e.initHello();
    h.setClientId("x");
    h.setVersion(wire::PROTOCOL_VERSION);
  });

  std::mt19937_64 rng(42);
  RawClient c(broker_->endpoint());
  for (int i = 0; i < 5000; ++i) {
    std::string frame = seeds[rng() % seeds.size()];
    switch (rng() % 3) {
      case 0:
        for (int k = 0; k < 4; ++k)
          frame[rng() % frame.size()] ^= static_cast<char>(1 << (rng() % 8));
        break;
      case 1:
        frame.resize((rng() % (frame.size() / 8 + 1)) * 8);
        break;
      default: {
        const uint64_t big = ~0ull >> (rng() % 40);
        if (frame.size() >= 16)
          std::memcpy(&frame[8 * (1 + rng() % (frame.size() / 8 - 1))], &big, 8);
      }
    }
    if (!frame.empty()) c.SendBytes(frame.data(), frame.size());
  }
  // One client's requests are served in order: when this one is answered,
  // all 5000 were handled.
  wire::OutFrame last(777777);
  last.envelope().setStatus();
  c.Send(last);
  bool answered = false;
  for (int replies = 0; replies < 20000 && !answered; ++replies) {
    auto reply = c.Receive(std::chrono::seconds(10));
    ASSERT_TRUE(reply.has_value())
        << "the broker stopped answering after " << replies << " replies";
    answered = reply->envelope().getRequestId() == 777777;
  }
  ASSERT_TRUE(answered);
  EXPECT_GT(BadFrames(), 100u);
  ExpectServing();
  // And it still does its job.
  Producer p({.broker = broker_->endpoint()});
  ASSERT_TRUE(p.Start().ok());
  ASSERT_TRUE(p.Send({.topic = "after-the-storm", .body = "fine"}).ok());
}

}  // namespace
}  // namespace txmq
