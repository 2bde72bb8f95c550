// Transaction requests whose durable write fails: the disk takes the bytes
// but the fdatasync fails (tests/testutil/fault_fs.h), and then the power
// goes, so what was not synced is gone. Whatever the request was, its
// caller must not hear OK; the broker stops taking writes; and after a
// restart the transaction is where the last acknowledged write left it, so
// the producer (or the operator) can simply do it again.
#include <gtest/gtest.h>

#include <chrono>
#include <memory>

#include "storage/src/broker_store.h"
#include "tests/testutil/admin_client.h"
#include "tests/testutil/fault_fs.h"
#include "tests/testutil/testutil.h"
#include "tests/testutil/tx_requests.h"
#include "txmq/transaction_producer.h"

namespace txmq {
namespace {

using namespace std::chrono_literals;
using testing::AdminClient;
using testing::FaultFileSystem;
using testing::FaultLevelDbEnv;
using testing::HalfMessage;
using testing::TempDir;
using testing::WaitFor;

class TxDiskFailure : public ::testing::Test {
 protected:
  void SetUp() override {
    auto layers = std::make_shared<StorageLayers>();
    layers->fs = &fs_;
    layers->env = &env_;
    options_ = testing::TestBrokerOptions(dir_.Sub("data"));
    options_.storage_layers = layers;
    broker_ = testing::StartBroker(options_);
    ASSERT_NE(broker_, nullptr);
    admin_ = std::make_unique<AdminClient>(broker_->endpoint());
  }

  // The broker must have stopped by itself, naming the failed write; then
  // the power goes (unsynced bytes are lost) and it starts again on the
  // real file layers, at the same address.
  void ExpectStoppedThenRestart() {
    Status why = broker_->Wait();
    EXPECT_FALSE(why.ok()) << "the broker kept serving after a failed write";
    const std::string endpoint = broker_->endpoint();
    admin_.reset();
    broker_.reset();
    fs_.DropUnsynced();
    env_.DropUnsynced();
    BrokerOptions healthy = options_;
    healthy.storage_layers = nullptr;
    healthy.listen = endpoint;
    broker_ = testing::StartBroker(healthy);
    ASSERT_NE(broker_, nullptr);
    admin_ = std::make_unique<AdminClient>(broker_->endpoint());
  }

  TempDir dir_;
  FaultFileSystem fs_;
  FaultLevelDbEnv env_;
  BrokerOptions options_;
  std::unique_ptr<Broker> broker_;
  std::unique_ptr<AdminClient> admin_;
};

TEST_F(TxDiskFailure, AHalfWhoseWriteFailedIsNotAcknowledgedAndCanBeSentAgain) {
  fs_.FailSyncs();
  auto half = testing::SendHalf(*admin_, "tx-half", "orders", {{.id = "m-1"}});
  ASSERT_FALSE(half.ok()) << "a half that is not on disk was acknowledged";
  EXPECT_EQ(half.status().code(), StatusCode::kUnavailable) << half.status().ToString();
  EXPECT_NE(half.status().message().find("half message not stored"), std::string::npos)
      << half.status().ToString();
  // Nothing else is taken either (memory may be ahead of the disk now):
  // refused, or the broker is already gone.
  auto next = testing::SendHalf(*admin_, "tx-other", "orders", {{.id = "m-2"}});
  EXPECT_FALSE(next.ok()) << "a write was acknowledged after the disk failed";

  ASSERT_NO_FATAL_FAILURE(ExpectStoppedThenRestart());
  EXPECT_EQ(admin_->Show("tx-half").status().code(), StatusCode::kNotFound)
      << "the half never reached the disk";
  // The producer's retry with the same transaction id stores it now.
  auto again = testing::SendHalf(*admin_, "tx-half", "orders", {{.id = "m-1"}});
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(*again, wire::TxState::PREPARED);
  ASSERT_TRUE(admin_->End("tx-half", true).ok());
  auto seen = testing::DrainTopic(broker_->endpoint(), "t", 1);
  EXPECT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen["m-1"], 1);
}

TEST_F(TxDiskFailure, AnEndWhoseWriteFailedIsNotAcknowledgedAndTheTransactionStaysOpen) {
  options_.transaction_timeout = 1h;  // no check-back decides it meanwhile
  broker_.reset();
  admin_.reset();
  broker_ = testing::StartBroker(options_);
  ASSERT_NE(broker_, nullptr);
  admin_ = std::make_unique<AdminClient>(broker_->endpoint());
  ASSERT_TRUE(testing::SendHalf(*admin_, "tx-end", "orders", {{.id = "e-1"}, {.id = "e-2"}}).ok());

  fs_.FailSyncs();
  auto end = admin_->End("tx-end", /*commit=*/true);
  ASSERT_FALSE(end.ok()) << "a commit that is not on disk was acknowledged";
  EXPECT_EQ(end.status().code(), StatusCode::kUnavailable) << end.status().ToString();
  EXPECT_NE(end.status().message().find("outcome not recorded"), std::string::npos)
      << end.status().ToString();

  ASSERT_NO_FATAL_FAILURE(ExpectStoppedThenRestart());
  auto info = admin_->Show("tx-end");
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(info->state, wire::TxState::PREPARED) << "the commit was lost with the power";
  EXPECT_EQ(info->message_ids, (std::vector<std::string>{"e-1", "e-2"}));
  EXPECT_EQ(admin_->TopicMessages("t"), -1) << "nothing was appended to the topic";
  // The producer repeats its commit: both messages arrive, once.
  auto again = admin_->End("tx-end", true);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(*again, wire::TxState::COMMITTED);
  auto seen = testing::DrainTopic(broker_->endpoint(), "t", 2);
  EXPECT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen["e-1"], 1);
  EXPECT_EQ(seen["e-2"], 1);
}

TEST_F(TxDiskFailure, ACheckNowWhoseWriteFailedIsNotAcknowledgedAndTheStuckStateStays) {
  // A producer that never knows: three unanswered checks make it stuck.
  {
    TransactionProducer p({.broker = broker_->endpoint(), .group = "orders"},
                          [](const CheckRequest&) { return TxState::kUnknown; });
    ASSERT_TRUE(p.Start().ok());
    ASSERT_TRUE(testing::SendHalf(*admin_, "tx-stuck", "orders", {{.id = "s-1"}}).ok());
    ASSERT_TRUE(WaitFor([&] {
      auto info = admin_->Show("tx-stuck");
      return info.ok() && info->stuck;
    })) << "never stuck";
  }
  const auto before = admin_->Show("tx-stuck");
  ASSERT_TRUE(before.ok());
  ASSERT_EQ(before->check_count, options_.check_max);

  fs_.FailSyncs();
  auto recheck = admin_->Call([](wire::Envelope::Builder e) {
    auto c = e.initCheckNow();
    c.setStuckOnly(true);
    c.setOperator("test");
  });
  ASSERT_FALSE(recheck.ok()) << "a recheck that is not on disk was acknowledged";
  EXPECT_EQ(recheck.status().code(), StatusCode::kUnavailable) << recheck.status().ToString();
  EXPECT_NE(recheck.status().message().find("not recorded"), std::string::npos)
      << recheck.status().ToString();

  ASSERT_NO_FATAL_FAILURE(ExpectStoppedThenRestart());
  auto after = admin_->Show("tx-stuck");
  ASSERT_TRUE(after.ok()) << after.status().ToString();
  EXPECT_EQ(after->state, wire::TxState::PREPARED);
  EXPECT_TRUE(after->stuck) << "the un-stick was never durable";
  EXPECT_EQ(after->check_count, before->check_count);
  // The operator repeats it; now it holds.
  auto scheduled = admin_->Call([](wire::Envelope::Builder e) {
    auto c = e.initCheckNow();
    c.setStuckOnly(true);
    c.setOperator("test");
  });
  ASSERT_TRUE(scheduled.ok()) << scheduled.status().ToString();
  EXPECT_EQ(scheduled->envelope().getCheckNowOk().getScheduled(), 1u);
  auto unstuck = admin_->Show("tx-stuck");
  ASSERT_TRUE(unstuck.ok());
  EXPECT_FALSE(unstuck->stuck);
  EXPECT_EQ(unstuck->check_count, 0u);
}

}  // namespace
}  // namespace txmq
