// The lease requests by hand, as a consumer library would send them:
// extension (only by the holder, never after the lease ended) and goodbye
// (held messages come back in the order they were handed out).
#include <gtest/gtest.h>

#include "protocol/src/codec.h"
#include "protocol/src/message_codec.h"
#include "tests/integration/raw_client.h"
#include "tests/testutil/testutil.h"
#include "txmq/producer.h"

namespace txmq {
namespace {

using namespace std::chrono_literals;
using testing::RawClient;
using testing::StartBroker;
using testing::TempDir;
using testing::TestBrokerOptions;
using testing::WaitFor;

class Leases : public ::testing::Test {
 protected:
  void SetUp() override {
    options_ = TestBrokerOptions(dir_.Sub("data"));
    broker_ = StartBroker(options_);
    ASSERT_NE(broker_, nullptr);
    producer_ = std::make_unique<Producer>(ProducerOptions{.broker = broker_->endpoint()});
    ASSERT_TRUE(producer_->Start().ok());
  }

  void Send(const std::string& topic, const std::string& key, const std::string& body) {
    auto r = producer_->Send({.topic = topic, .key = key, .body = body});
    ASSERT_TRUE(r.ok()) << r.status().ToString();
  }

  TempDir dir_;
  BrokerOptions options_;
  std::unique_ptr<Broker> broker_;
  std::unique_ptr<Producer> producer_;
};

// A client that pulls with a chosen lease and extends leases itself.
class LeaseClient {
 public:
  LeaseClient(const std::string& endpoint, const std::string& id) : raw_(endpoint, id) {}

  std::vector<wire::Receipt::Reader> Pull(const std::string& group, const std::string& topic,
                                          uint32_t visibility_ms) {
    wire::OutFrame pull(next_id_++);
    auto p = pull.envelope().initPull();
    p.setGroup(group);
    p.initTopics(1).set(0, topic);
    p.setMaxMessages(32);
    p.setVisibilityTimeoutMs(visibility_ms);
    raw_.Send(pull);
    last_pull_ = raw_.Receive();
    std::vector<wire::Receipt::Reader> receipts;
    if (!last_pull_) return receipts;
    for (auto d : last_pull_->envelope().getPullOk().getMessages()) {
      receipts.push_back(d.getReceipt());
    }
    return receipts;
  }

  // The messages of the last pull.
  std::vector<Received> last_pulled() const {
    std::vector<Received> out;
    if (!last_pull_) return out;
    for (auto d : last_pull_->envelope().getPullOk().getMessages()) {
      out.push_back(wire::DeliveredFromWire(d));
    }
    return out;
  }

  void Goodbye() {
    wire::OutFrame goodbye(next_id_++);
    goodbye.envelope().setGoodbye();
    EXPECT_TRUE(raw_.Call(goodbye).ok());
  }

  struct Answer {
    Status status;
    wire::LeaseState state = wire::LeaseState::EXPIRED;
    uint32_t delivery_count = 0, retry_after_ms = 0, valid_for_ms = 0;
  };
  Answer Extend(const std::string& group, wire::Receipt::Reader receipt, uint32_t visibility_ms,
                bool failed = false, uint32_t delay_ms = 0) {
    wire::OutFrame x(next_id_++);
    auto req = x.envelope().initExtendLease();
    req.setGroup(group);
    req.initReceipts(1).setWithCaveats(0, receipt);
    req.setVisibilityTimeoutMs(visibility_ms);
    req.setFailed(failed);
    req.setDelayMs(delay_ms);
    raw_.Send(x);
    Answer a;
    auto reply = raw_.Receive();
    if (!reply) {
      a.status = Status::Timeout("no reply");
      return a;
    }
    a.status = wire::StatusOf(reply->envelope());
    if (!a.status.ok()) return a;
    auto results = reply->envelope().getExtendLeaseOk().getResults();
    EXPECT_EQ(results.size(), 1u);
    a.state = results[0].getState();
    a.delivery_count = results[0].getDeliveryCount();
    a.retry_after_ms = results[0].getRetryAfterMs();
    a.valid_for_ms = results[0].getValidForMs();
    return a;
  }

 private:
  RawClient raw_;
  uint64_t next_id_ = 1;
  std::optional<wire::Frame> last_pull_;  // the receipts point into it
};

TEST_F(Leases, OnlyTheHolderCanExtendALeaseAndNotOnceItEnded) {
  Send("jobs", "", "x");
  LeaseClient holder(broker_->endpoint(), "holder"), other(broker_->endpoint(), "other");
  auto receipts = holder.Pull("workers", "jobs", 400);
  ASSERT_EQ(receipts.size(), 1u);
  const wire::Receipt::Reader r = receipts[0];

  auto refused = other.Extend("workers", r, 400);
  ASSERT_TRUE(refused.status.ok()) << refused.status.ToString();
  EXPECT_EQ(refused.state, wire::LeaseState::NOT_HOLDER);

  auto wrong_group = holder.Extend("another-group", r, 400);
  EXPECT_EQ(wrong_group.state, wire::LeaseState::EXPIRED);

  auto bad_group = holder.Extend("bad group", r, 400);
  EXPECT_EQ(bad_group.status.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(bad_group.status.message().find("'bad group'"), std::string::npos);

  auto extended = holder.Extend("workers", r, 400);
  EXPECT_EQ(extended.state, wire::LeaseState::EXTENDED);
  EXPECT_EQ(extended.delivery_count, 1u);
  EXPECT_EQ(extended.valid_for_ms, 400u);

  // A failure counts a delivery and holds the lease through the retry delay.
  auto failed = holder.Extend("workers", r, 400, /*failed=*/true, /*delay_ms=*/100);
  EXPECT_EQ(failed.state, wire::LeaseState::EXTENDED);
  EXPECT_EQ(failed.delivery_count, 2u);
  EXPECT_EQ(failed.retry_after_ms, 100u);
  EXPECT_EQ(failed.valid_for_ms, 500u);

  // Left alone, the lease ends; extending it then is refused, and the
  // message comes again with the next pull of its queue's owner (the
  // holder: `other` never pulled, so it owns nothing).
  capnp::MallocMessageBuilder first_receipt;
  first_receipt.setRoot(r);
  const wire::Receipt::Reader ended = first_receipt.getRoot<wire::Receipt>().asReader();
  std::vector<wire::Receipt::Reader> again;
  ASSERT_TRUE(WaitFor([&] {
    again = holder.Pull("workers", "jobs", 10000);
    return !again.empty();
  }));
  auto late = holder.Extend("workers", ended, 400);
  EXPECT_EQ(late.state, wire::LeaseState::EXPIRED);
  EXPECT_EQ(other.Extend("workers", again[0], 400).state, wire::LeaseState::NOT_HOLDER);
  EXPECT_EQ(holder.Extend("workers", again[0], 400).state, wire::LeaseState::EXTENDED);
}

TEST_F(Leases, GoodbyeGivesHeldMessagesBackInTheOrderTheyWereHandedOut) {
  for (int i = 0; i < 20; ++i) Send("orders", "order-1", std::to_string(i));
  {
    LeaseClient leaving(broker_->endpoint(), "leaving");
    ASSERT_EQ(leaving.Pull("billing", "orders", 60000).size(), 20u);
    leaving.Goodbye();
  }
  LeaseClient next(broker_->endpoint(), "next");
  ASSERT_EQ(next.Pull("billing", "orders", 60000).size(), 20u);
  std::vector<std::string> bodies;
  for (const Received& m : next.last_pulled()) {
    bodies.push_back(m.body);
    EXPECT_EQ(m.delivery_count, 1u) << "given back, not failed";
  }
  std::vector<std::string> expected;
  for (int i = 0; i < 20; ++i) expected.push_back(std::to_string(i));
  EXPECT_EQ(bodies, expected);
}

}  // namespace
}  // namespace txmq
