// The disk watermark in a running broker, with a fake free-space source:
// below --min-free-disk new messages are refused with RESOURCE_EXHAUSTED
// while consumers drain and transactions end (by the producer, by an
// operator, by a check-back answer); above it again the broker accepts
// them by itself. (tests/fault/disk_full_test.cc does the same on a real,
// small file system.)
#include <gtest/gtest.h>

#include <atomic>
#include <set>
#include <thread>

#include "broker/src/disk_watermark.h"
#include "tests/testutil/admin_client.h"
#include "tests/testutil/fake_free_space.h"
#include "tests/testutil/testutil.h"
#include "tests/testutil/tx_requests.h"
#include "txmq/transaction_producer.h"

namespace txmq {
namespace {

using testing::FakeFreeSpace;

using namespace std::chrono_literals;
using testing::AdminClient;
using testing::WaitFor;

constexpr uint64_t kMiB = 1ull << 20;

class DiskWatermarkBroker : public ::testing::Test {
 protected:
  void SetUp() override {
    options_ = testing::TestBrokerOptions(dir_.Sub("data"));
    options_.free_space = fake_;
    options_.min_free_disk_bytes = 1024 * kMiB;
    options_.check_max = 1000;  // the checked transaction waits for the disk to fill
    broker_ = testing::StartBroker(options_);
    ASSERT_NE(broker_, nullptr);
    admin_ = std::make_unique<AdminClient>(broker_->endpoint());
  }

  Result<wire::Frame> Send(const std::string& id, const std::string& topic = "orders") {
    return admin_->Call([&](wire::Envelope::Builder e) {
      auto m = e.initSend().initMessage();
      m.setId(id);
      m.setTopic(topic);
      m.setBody(wire::AsData("body of " + id));
    });
  }
  Status CreateTopic(const std::string& topic) {
    return admin_
        ->Call([&](wire::Envelope::Builder e) {
          auto c = e.initCreateTopic();
          c.setTopic(topic);
          c.setOperator("test");
        })
        .status();
  }
  wire::BrokerStatus::Reader BrokerStatus(std::optional<wire::Frame>& holder) {
    auto r = admin_->Call([](wire::Envelope::Builder e) { e.setStatus(); });
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    holder.emplace(std::move(r.value()));
    return holder->envelope().getStatusOk();
  }
  // Pulls `topic` as `group` and acks each batch, until nothing comes for
  // a while; the ids received. Fails the test if an ack is not taken.
  std::set<std::string> DrainAndAck(const std::string& group, const std::string& topic = "orders") {
    std::set<std::string> ids;
    for (int empty = 0; empty < 3;) {
      auto r = admin_->Call([&](wire::Envelope::Builder e) {
        auto p = e.initPull();
        p.setGroup(group);
        p.initTopics(1).set(0, topic);
        p.setMaxMessages(100);
        p.setWaitMs(300);
      });
      EXPECT_TRUE(r.ok()) << r.status().ToString();
      if (!r.ok()) break;
      auto messages = r->envelope().getPullOk().getMessages();
      if (messages.size() == 0) {
        ++empty;
        continue;
      }
      auto ack = admin_->Call([&](wire::Envelope::Builder e) {
        auto a = e.initAck();
        a.setGroup(group);
        auto receipts = a.initReceipts(messages.size());
        for (unsigned i = 0; i < messages.size(); ++i) {
          receipts.setWithCaveats(i, messages[i].getReceipt());
          ids.insert(wire::ToString(messages[i].getMessage().getId()));
        }
      });
      EXPECT_TRUE(ack.ok()) << ack.status().ToString();
      if (ack.ok()) {
        EXPECT_EQ(ack->envelope().getAckOk().getAcked(), messages.size());
      }
    }
    return ids;
  }

  testing::TempDir dir_;
  std::shared_ptr<FakeFreeSpace> fake_ = std::make_shared<FakeFreeSpace>();
  BrokerOptions options_;
  std::unique_ptr<Broker> broker_;
  std::unique_ptr<AdminClient> admin_;
};

TEST_F(DiskWatermarkBroker, RefusesNewMessagesWhileConsumersDrainAndTransactionsEndThenResumes) {
  std::set<std::string> sent;
  for (int i = 0; i < 20; ++i) {
    const std::string id = "m" + std::to_string(i);
    ASSERT_TRUE(Send(id).ok());
    sent.insert(id);
  }
  ASSERT_TRUE(
      testing::SendHalf(*admin_, "tx-commit", "shop", {{.id = "h-commit", .topic = "orders"}})
          .ok());
  ASSERT_TRUE(
      testing::SendHalf(*admin_, "tx-rollback", "shop", {{.id = "h-rollback", .topic = "orders"}})
          .ok());
  // A transaction whose outcome comes from a check-back: its checker
  // cannot tell until the disk is low, then answers COMMIT.
  std::atomic<bool> disk_low{false};
  TransactionProducer checked(
      {.broker = broker_->endpoint(), .group = "checked"},
      [&](const CheckRequest&) { return disk_low ? TxState::kCommit : TxState::kUnknown; });
  ASSERT_TRUE(checked.Start().ok());
  auto started = checked.SendInTransaction({.topic = "orders", .body = "c", .id = "h-checked"},
                                           [](const Message&) { return TxState::kUnknown; });
  ASSERT_TRUE(started.status.ok()) << started.status.ToString();

  fake_->free = 100 * kMiB;
  Status refused;
  int attempt = 0;
  ASSERT_TRUE(WaitFor([&] {
    // Until the broker reads the new free space, sends are still taken.
    const std::string id = "late-" + std::to_string(attempt++);
    refused = Send(id).status();
    if (refused.ok()) sent.insert(id);
    return !refused.ok();
  }));
  disk_low = true;
  EXPECT_EQ(refused.code(), StatusCode::kResourceExhausted) << refused.ToString();
  for (const std::string& part : {std::string("100.0 MiB free"), "'" + options_.data_dir + "'",
                                  std::string("--min-free-disk 1.0 GiB")}) {
    EXPECT_NE(refused.message().find(part), std::string::npos)
        << part << " in " << refused.ToString();
  }

  // Everything that adds data is refused...
  EXPECT_EQ(testing::SendHalf(*admin_, "tx-late", "shop", {{.id = "h-late", .topic = "orders"}})
                .status()
                .code(),
            StatusCode::kResourceExhausted);
  EXPECT_EQ(CreateTopic("brand-new").code(), StatusCode::kResourceExhausted);
  auto resend = admin_->Call([](wire::Envelope::Builder e) {
    auto r = e.initDlqResend();
    r.setGroup("billing");
    r.setAll(true);
    r.setOperator("test");
  });
  EXPECT_EQ(resend.status().code(), StatusCode::kResourceExhausted) << resend.status().ToString();
  // ... what writes nothing is answered: a resend of a stored message, an
  // existing topic.
  auto again = Send("m0");
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_TRUE(again->envelope().getSendOk().getDuplicate());
  EXPECT_TRUE(CreateTopic("orders").ok());

  // Transactions end: by their producer, and by a check-back answer.
  auto committed = admin_->End("tx-commit", true);
  ASSERT_TRUE(committed.ok()) << committed.status().ToString();
  EXPECT_EQ(*committed, wire::TxState::COMMITTED);
  auto rolled_back = admin_->End("tx-rollback", false);
  ASSERT_TRUE(rolled_back.ok()) << rolled_back.status().ToString();
  EXPECT_EQ(*rolled_back, wire::TxState::ROLLED_BACK);
  ASSERT_TRUE(WaitFor([&] {
    auto t = admin_->Show(started.transaction_id);
    return t.ok() && t->state == wire::TxState::COMMITTED;
  })) << "the check answer was not taken";

  // A nack is taken too: the message comes back (its retry is written).
  auto pulled = admin_->Call([](wire::Envelope::Builder e) {
    auto p = e.initPull();
    p.setGroup("nacker");
    p.initTopics(1).set(0, "orders");
    p.setMaxMessages(1);
    p.setWaitMs(1000);
  });
  ASSERT_TRUE(pulled.ok()) << pulled.status().ToString();
  auto first = pulled->envelope().getPullOk().getMessages();
  ASSERT_EQ(first.size(), 1u);
  const std::string nacked = wire::ToString(first[0].getMessage().getId());
  auto nack = admin_->Call([&](wire::Envelope::Builder e) {
    auto n = e.initNack();
    n.setGroup("nacker");
    n.initReceipts(1).setWithCaveats(0, first[0].getReceipt());
    n.setDelayMs(1);
  });
  ASSERT_TRUE(nack.ok()) << nack.status().ToString();
  EXPECT_EQ(nack->envelope().getNackOk().getRequeued(), 1u);
  EXPECT_EQ(DrainAndAck("nacker", "orders").count(nacked), 1u) << "the nacked message came back";

  // Consumers drain everything acknowledged, and their acks are taken.
  std::set<std::string> expected = sent;
  expected.insert({"h-commit", "h-checked"});
  EXPECT_EQ(DrainAndAck("billing"), expected);
  EXPECT_TRUE(DrainAndAck("billing").empty()) << "acked messages came back";

  std::optional<wire::Frame> holder;
  auto status = BrokerStatus(holder);
  EXPECT_TRUE(status.getDiskLow());
  EXPECT_EQ(status.getDiskFreeBytes(), 100 * kMiB);
  EXPECT_EQ(status.getMinFreeDiskBytes(), 1024 * kMiB);
  EXPECT_TRUE(status.getStorageHealthy()) << "refusing is not failing";

  // Above the threshold plus an eighth, sends are taken again by themselves.
  fake_->free = 1100 * kMiB;  // above the threshold, within the hysteresis
  const int reads = fake_->reads;
  ASSERT_TRUE(WaitFor([&] { return fake_->reads >= reads + 2; }));
  EXPECT_EQ(Send("still-low").status().code(), StatusCode::kResourceExhausted);
  fake_->free = 100'000 * kMiB;
  ASSERT_TRUE(WaitFor([&] { return Send("after").ok(); }));
  EXPECT_TRUE(
      testing::SendHalf(*admin_, "tx-after", "shop", {{.id = "h-after", .topic = "orders"}}).ok());
  EXPECT_TRUE(CreateTopic("brand-new").ok());
  EXPECT_FALSE(BrokerStatus(holder).getDiskLow());
  EXPECT_EQ(DrainAndAck("billing"), (std::set<std::string>{"after"}));
}

}  // namespace
}  // namespace txmq
