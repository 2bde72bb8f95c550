// Same-key order through the real consumer and an embedded broker: one
// key's messages run one at a time and in order, different keys in
// parallel; a failed message is retried in place before its key's later
// messages, whose leases the consumer extends meanwhile.
#include <gtest/gtest.h>

#include <condition_variable>
#include <map>
#include <mutex>
#include <thread>
#include <zmq.hpp>

#include "protocol/src/codec.h"
#include "tests/testutil/testutil.h"
#include "txmq/consumer.h"
#include "txmq/producer.h"

namespace txmq {
namespace {

using namespace std::chrono_literals;
using testing::StartBroker;
using testing::TempDir;
using testing::TestBrokerOptions;
using testing::WaitFor;

// What ran, in the order handlers started, and whether one key ever ran
// twice at once.
struct Runs {
  std::mutex mu;
  std::vector<Received> started;
  std::map<std::string, int> running;  // by key
  int overlaps = 0;                    // a handler started while its key ran

  void Begin(const Received& m) {
    std::lock_guard<std::mutex> lock(mu);
    started.push_back(m);
    if (running[m.key]++ > 0) ++overlaps;
  }
  void End(const Received& m) {
    std::lock_guard<std::mutex> lock(mu);
    --running[m.key];
  }
  size_t count() {
    std::lock_guard<std::mutex> lock(mu);
    return started.size();
  }
  // Bodies of one key's messages in the order they started.
  std::vector<std::string> BodiesOf(const std::string& key) {
    std::lock_guard<std::mutex> lock(mu);
    std::vector<std::string> out;
    for (const Received& m : started) {
      if (m.key == key) out.push_back(m.body);
    }
    return out;
  }
  std::vector<uint32_t> CountsOf(const std::string& body) {
    std::lock_guard<std::mutex> lock(mu);
    std::vector<uint32_t> out;
    for (const Received& m : started) {
      if (m.body == body) out.push_back(m.delivery_count);
    }
    return out;
  }
};

std::vector<std::string> Numbers(int from, int to) {
  std::vector<std::string> out;
  for (int i = from; i < to; ++i) out.push_back(std::to_string(i));
  return out;
}

class Ordering : public ::testing::Test {
 protected:
  void SetUp() override {
    options_ = TestBrokerOptions(dir_.Sub("data"));
    broker_ = StartBroker(options_);
    ASSERT_NE(broker_, nullptr);
    producer_ = std::make_unique<Producer>(ProducerOptions{.broker = broker_->endpoint()});
    ASSERT_TRUE(producer_->Start().ok());
  }

  // One at a time, so the broker stores them in this order.
  void Send(const std::string& topic, const std::string& key, const std::string& body) {
    auto r = producer_->Send({.topic = topic, .key = key, .body = body});
    ASSERT_TRUE(r.ok()) << r.status().ToString();
  }

  ConsumerOptions Options(const std::string& group) {
    return {.broker = broker_->endpoint(), .group = group, .long_poll = 500ms};
  }

  TempDir dir_;
  BrokerOptions options_;
  std::unique_ptr<Broker> broker_;
  std::unique_ptr<Producer> producer_;
};

TEST_F(Ordering, OneKeyRunsStrictlyInOrderOnTheDefaultConsumer) {
  constexpr int kCount = 240;
  for (int i = 0; i < kCount; ++i) Send("account-events", "account-7", std::to_string(i));
  Runs runs;
  Consumer c(Options("ledger"));  // default: 4 handler threads
  ASSERT_EQ(c.options().handler_threads, 4);
  ASSERT_TRUE(c.Subscribe("account-events", [&](const Received& m) {
                 runs.Begin(m);
                 std::this_thread::sleep_for(1ms);  // gives a second thread a chance to overlap
                 runs.End(m);
                 return ConsumeResult::Success();
               }).ok());
  ASSERT_TRUE(c.Start().ok());
  ASSERT_TRUE(WaitFor([&] { return runs.count() >= kCount; }, 60s)) << runs.count();
  c.Shutdown();
  EXPECT_EQ(runs.BodiesOf("account-7"), Numbers(0, kCount));
  EXPECT_EQ(runs.overlaps, 0) << "two handlers ran the same key at once";
}

TEST_F(Ordering, KeysKeepTheirOwnOrderAndRunInParallel) {
  constexpr int kKeys = 4, kPerKey = 40;
  for (int i = 0; i < kKeys * kPerKey; ++i) {
    Send("events", "key-" + std::to_string(i % kKeys), std::to_string(i / kKeys));
  }
  // The first message of each key waits until handlers of all four keys run
  // at once (or 10 s pass): with a consumer that runs keys in parallel that
  // always happens, without one it never does. No timing luck either way.
  Runs runs;
  std::mutex mu;
  std::condition_variable cv;
  int running = 0, peak = 0;
  bool gave_up = false;
  Consumer c(Options("projector"));
  ASSERT_TRUE(c.Subscribe("events", [&](const Received& m) {
                 runs.Begin(m);
                 {
                   std::unique_lock<std::mutex> lock(mu);
                   peak = std::max(peak, ++running);
                   cv.notify_all();
                   if (m.body == "0" && !gave_up &&
                       !cv.wait_for(lock, 10s, [&] { return peak >= kKeys; })) {
                     gave_up = true;
                   }
                   --running;
                 }
                 runs.End(m);
                 return ConsumeResult::Success();
               }).ok());
  ASSERT_TRUE(c.Start().ok());
  ASSERT_TRUE(WaitFor([&] { return runs.count() >= kKeys * kPerKey; }, 90s)) << runs.count();
  c.Shutdown();
  EXPECT_EQ(peak, kKeys) << "different keys run in parallel";
  for (int k = 0; k < kKeys; ++k) {
    EXPECT_EQ(runs.BodiesOf("key-" + std::to_string(k)), Numbers(0, kPerKey)) << "key-" << k;
  }
  EXPECT_EQ(runs.overlaps, 0);
}

TEST_F(Ordering, RetryOfAMessageRunsBeforeTheNextOfItsKey) {
  for (int i = 0; i < 10; ++i) Send("orders", "order-42", std::to_string(i));
  Runs runs;
  std::atomic<int> attempts_of_3{0};
  Consumer c(Options("billing"));
  ASSERT_TRUE(c.Subscribe("orders", [&](const Received& m) {
                 runs.Begin(m);
                 runs.End(m);
                 if (m.body == "3" && ++attempts_of_3 <= 2) {
                   if (attempts_of_3 == 2) throw std::runtime_error("payment service down");
                   return ConsumeResult::RetryLater(50ms);
                 }
                 return ConsumeResult::Success();
               }).ok());
  ASSERT_TRUE(c.Start().ok());
  // All ten arrive in the first pull: 4..9 are already here when 3 fails.
  ASSERT_TRUE(WaitFor([&] { return runs.count() >= 12; }, 20s)) << runs.count();
  std::this_thread::sleep_for(500ms);  // longer than every test backoff: would anything come back?
  c.Shutdown();
  EXPECT_EQ(runs.BodiesOf("order-42"),
            (std::vector<std::string>{"0", "1", "2", "3", "3", "3", "4", "5", "6", "7", "8", "9"}));
  EXPECT_EQ(runs.CountsOf("3"), (std::vector<uint32_t>{1, 2, 3}));
  EXPECT_EQ(runs.CountsOf("4"), (std::vector<uint32_t>{1}));
  EXPECT_EQ(c.stats().retried, 2u);
  EXPECT_EQ(c.stats().leases_lost, 0u);
}

TEST_F(Ordering, MessageThatKeepsFailingIsDeadLetteredThenTheNextRuns) {
  for (int i = 0; i < 6; ++i) Send("orders", "order-7", std::to_string(i));
  Runs runs, dead;
  auto options = Options("billing");
  options.max_reconsume_times = 2;  // three deliveries, then the dead-letter topic
  Consumer c(options);
  ASSERT_TRUE(c.Subscribe("orders", [&](const Received& m) {
                 runs.Begin(m);
                 runs.End(m);
                 return m.body == "2" ? ConsumeResult::RetryLater(10ms) : ConsumeResult::Success();
               }).ok());
  ASSERT_TRUE(c.Subscribe("%DLQ%billing", [&](const Received& m) {
                 dead.Begin(m);
                 dead.End(m);
                 return ConsumeResult::Success();
               }).ok());
  ASSERT_TRUE(c.Start().ok());
  ASSERT_TRUE(WaitFor([&] { return runs.count() >= 8 && dead.count() >= 1; }, 20s));
  c.Shutdown();
  EXPECT_EQ(runs.BodiesOf("order-7"),
            (std::vector<std::string>{"0", "1", "2", "2", "2", "3", "4", "5"}));
  EXPECT_EQ(runs.CountsOf("2"), (std::vector<uint32_t>{1, 2, 3}));
  ASSERT_EQ(dead.count(), 1u);
  EXPECT_EQ(dead.started[0].body, "2");
  EXPECT_EQ(dead.started[0].properties.at("txmq.dlq.deliveries"), "3");
}

TEST_F(Ordering, HeldLeasesAreExtendedAndNotDeliveredToAnotherConsumer) {
  for (int i = 0; i < 5; ++i) Send("orders", "order-9", std::to_string(i));
  auto options = Options("shipping");
  options.visibility_timeout = 500ms;
  Runs a_runs, b_runs;
  std::atomic<bool> failed_once{false};
  Consumer a(options);
  ASSERT_TRUE(a.Subscribe("orders", [&](const Received& m) {
                 a_runs.Begin(m);
                 a_runs.End(m);
                 // Four visibility timeouts: 1..4 wait that long, and 0 itself too.
                 if (m.body == "0" && !failed_once.exchange(true)) {
                   return ConsumeResult::RetryLater(2s);
                 }
                 return ConsumeResult::Success();
               }).ok());
  ASSERT_TRUE(a.Start().ok());
  ASSERT_TRUE(WaitFor([&] { return failed_once.load(); }));
  // A second consumer of the group pulls all along; expired leases would
  // be delivered to it (or to `a` again).
  Consumer b(options);
  ASSERT_TRUE(b.Subscribe("orders", [&](const Received& m) {
                 b_runs.Begin(m);
                 b_runs.End(m);
                 return ConsumeResult::Success();
               }).ok());
  ASSERT_TRUE(b.Start().ok());
  ASSERT_TRUE(WaitFor([&] { return a_runs.count() >= 6; }, 20s)) << a_runs.count();
  std::this_thread::sleep_for(500ms);  // anything redelivered would show up by now
  a.Shutdown();
  b.Shutdown();
  EXPECT_EQ(a_runs.BodiesOf("order-9"), (std::vector<std::string>{"0", "0", "1", "2", "3", "4"}));
  EXPECT_EQ(a_runs.CountsOf("0"), (std::vector<uint32_t>{1, 2}));
  EXPECT_EQ(a_runs.CountsOf("4"), (std::vector<uint32_t>{1}));
  EXPECT_EQ(b_runs.count(), 0u) << "a held message went to another consumer";
  EXPECT_EQ(a.stats().leases_lost, 0u);
}

// Consumers of one group share the topic's queues, each queue owned by one
// of them at a time (broker/src/queue_owners.h): a key's messages never run
// on two consumers at once, and run in order while consumers join and leave.
TEST_F(Ordering, ConsumersJoiningAndLeavingAGroupRunEachKeyInOrder) {
  constexpr int kKeys = 16, kPerKey = 60;
  Runs runs;  // shared: start order across all consumers
  auto handler = [&](const Received& m) {
    runs.Begin(m);
    std::this_thread::sleep_for(1ms);  // room for another consumer to overlap
    runs.End(m);
    return ConsumeResult::Success();
  };
  auto start = [&] {
    auto c = std::make_unique<Consumer>(Options("billing"));
    EXPECT_TRUE(c->Subscribe("invoices", handler).ok());
    EXPECT_TRUE(c->Start().ok());
    return c;
  };
  // Sent while consumers come and go: a third of the messages each time.
  int sent = 0;
  auto send_third = [&] {
    for (int n = 0; n < kKeys * kPerKey / 3; ++n, ++sent) {
      Send("invoices", "key-" + std::to_string(sent % kKeys), std::to_string(sent / kKeys));
    }
  };
  // A backlog first: three consumers start at once and pull batches of it.
  send_third();
  std::unique_ptr<Consumer> a = start();
  std::unique_ptr<Consumer> b = start();
  std::unique_ptr<Consumer> c = start();
  ASSERT_TRUE(WaitFor([&] { return runs.count() >= static_cast<size_t>(sent) / 2; }, 30s));
  a->Shutdown();  // its queues go to b and c, what it had not run first
  send_third();
  std::unique_ptr<Consumer> d = start();  // takes its share from b and c
  send_third();
  ASSERT_EQ(sent, kKeys * kPerKey);
  ASSERT_TRUE(WaitFor([&] { return runs.count() >= static_cast<size_t>(sent); }, 60s))
      << runs.count() << " of " << sent;
  b->Shutdown();
  c->Shutdown();
  d->Shutdown();
  EXPECT_EQ(runs.overlaps, 0) << "one key ran on two consumers at once";
  for (int k = 0; k < kKeys; ++k) {
    EXPECT_EQ(runs.BodiesOf("key-" + std::to_string(k)), Numbers(0, kPerKey)) << "key-" << k;
  }
}

TEST_F(Ordering, ShutdownGivesBackAKeysMessagesInOrderBehindItsRetry) {
  for (int i = 0; i < 6; ++i) Send("orders", "order-5", std::to_string(i));
  Runs first, second;
  {
    Consumer c(Options("billing"));
    ASSERT_TRUE(c.Subscribe("orders", [&](const Received& m) {
                   first.Begin(m);
                   first.End(m);
                   // A long backoff: still waiting when the consumer stops.
                   return m.body == "0" ? ConsumeResult::RetryLater(30s) : ConsumeResult::Success();
                 }).ok());
    ASSERT_TRUE(c.Start().ok());
    ASSERT_TRUE(WaitFor([&] { return first.count() >= 1; }));
    c.Shutdown();
  }
  Consumer c(Options("billing"));
  ASSERT_TRUE(c.Subscribe("orders", [&](const Received& m) {
                 second.Begin(m);
                 second.End(m);
                 return ConsumeResult::Success();
               }).ok());
  ASSERT_TRUE(c.Start().ok());
  ASSERT_TRUE(WaitFor([&] { return second.count() >= 6; }, 20s)) << second.count();
  c.Shutdown();
  EXPECT_EQ(first.BodiesOf("order-5"), (std::vector<std::string>{"0"}));
  EXPECT_EQ(second.BodiesOf("order-5"), Numbers(0, 6));
  EXPECT_EQ(second.CountsOf("0"), (std::vector<uint32_t>{2})) << "its failure counted once";
  EXPECT_EQ(second.CountsOf("1"), (std::vector<uint32_t>{1})) << "given back, not failed";
}

// A broker from before lease extension answers extendLease with an error:
// the consumer then nacks the failed message, as consumers did before.
TEST(OrderingWithAnOlderBroker, AFailureTheBrokerCannotHoldIsNacked) {
  zmq::context_t context(1);
  zmq::socket_t router(context, zmq::socket_type::router);
  router.set(zmq::sockopt::linger, 0);
  router.bind("tcp://127.0.0.1:*");
  const std::string endpoint = router.get(zmq::sockopt::last_endpoint);
  std::atomic<bool> stop{false}, nacked{false};
  std::thread fake([&] {
    bool delivered = false;
    while (!stop) {
      zmq::pollitem_t item{router.handle(), 0, ZMQ_POLLIN, 0};
      if (zmq::poll(&item, 1, std::chrono::milliseconds(20)) == 0) continue;
      zmq::message_t id, body;
      if (!router.recv(id) || !router.recv(body)) continue;
      auto frame = wire::DecodeFrame(std::move(body), {});
      if (!frame.ok()) continue;
      auto env = frame->envelope();
      wire::OutFrame reply(env.getRequestId());
      switch (env.which()) {
        case wire::Envelope::HELLO:
          reply.envelope().initHelloOk();
          break;
        case wire::Envelope::HEARTBEAT:
          reply.envelope().initHeartbeatOk().setRegistered(true);
          break;
        case wire::Envelope::PULL: {
          auto list = reply.envelope().initPullOk().initMessages(delivered ? 0 : 1);
          if (!delivered) {
            auto m = list[0].initMessage();
            m.setId("m-1");
            m.setTopic("orders");
            m.setKey("order-1");
            list[0].setDeliveryCount(1);
            auto r = list[0].initReceipt();
            r.setTopic("orders");
            r.setLeaseId(77);
            delivered = true;
          }
          break;
        }
        case wire::Envelope::NACK:
          nacked = env.getNack().getReceipts().size() == 1 &&
                   env.getNack().getReceipts()[0].getLeaseId() == 77;
          reply.envelope().initNackOk().setRequeued(1);
          break;
        case wire::Envelope::GOODBYE:
          reply.envelope().setGoodbyeOk();
          break;
        default: {
          auto e = reply.envelope().initError();
          e.setCode(wire::ErrorCode::INVALID_ARGUMENT);
          e.setMessage("request kind is not one the broker serves");
        }
      }
      router.send(id, zmq::send_flags::sndmore);
      router.send(reply.Encode(), zmq::send_flags::none);
    }
  });
  std::atomic<int> runs{0};
  {
    Consumer c({.broker = endpoint, .group = "billing", .long_poll = 100ms});
    ASSERT_TRUE(c.Subscribe("orders", [&](const Received&) {
                   ++runs;
                   return ConsumeResult::RetryLater();
                 }).ok());
    ASSERT_TRUE(c.Start().ok());
    EXPECT_TRUE(WaitFor([&] { return nacked.load(); })) << "the failure never reached the broker";
    c.Shutdown();
  }
  stop = true;
  fake.join();
  EXPECT_EQ(runs, 1) << "handed back to the broker, not retried here";
}

}  // namespace
}  // namespace txmq
