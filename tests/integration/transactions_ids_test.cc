// Transactional messages against an embedded broker: what is remembered
// of a transaction's outcome and for how long, its message ids against
// plain sends and retries (stored once), and requests refused by name.
#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <set>
#include <thread>
#include <tuple>
#include <zmq.hpp>

#include "protocol/src/util.h"
#include "tests/integration/transactions_fixture.h"
#include "tests/testutil/admin_client.h"
#include "tests/testutil/testutil.h"
#include "txmq/consumer.h"
#include "txmq/producer.h"
#include "txmq/properties.h"
#include "txmq/transaction_producer.h"

namespace txmq {
namespace {

using namespace std::chrono_literals;
using testing::AdminClient;
using testing::Collector;
using testing::Transactions;
using testing::WaitFor;

TEST_F(Transactions, AnOutcomeIsRememberedForResolvedRetentionThenForgotten) {
  broker_->Stop();
  options_.resolved_retention = 2s;
  broker_ = testing::StartBroker(options_);
  admin_ = std::make_unique<AdminClient>(broker_->endpoint());
  std::atomic<TxState> answer{TxState::kUnknown};
  auto p = MakeProducer(answer);
  auto r = p->SendInTransaction({.topic = "t", .body = "x"},
                                [](const Message&) { return TxState::kCommit; });
  ASSERT_TRUE(r.ok());
  auto again = admin_->End(r.transaction_id, /*commit=*/true);
  ASSERT_TRUE(again.ok()) << "a repeated commit is answered from the resolution record";
  ASSERT_TRUE(WaitFor([&] {
    return admin_->Show(r.transaction_id).status().code() == StatusCode::kNotFound;
  })) << "the resolution record outlived --resolved-retention";
  auto late = admin_->End(r.transaction_id, true);
  EXPECT_EQ(late.status().code(), StatusCode::kNotFound);
  EXPECT_NE(late.status().message().find("ended more than 2s ago"), std::string::npos)
      << late.status().message();
}

// The dedup window covers committed transactional messages: one copy per
// message id, whichever way it arrived first.
TEST_F(Transactions, APlainSendOfACommittedIdIsADuplicateAlsoAfterRestart) {
  std::atomic<TxState> answer{TxState::kUnknown};
  auto tp = MakeProducer(answer);
  auto committed = tp->SendInTransaction({.topic = "t", .body = "tx copy", .id = "order-7"},
                                         [](const Message&) { return TxState::kCommit; });
  ASSERT_TRUE(committed.ok()) << committed.status.ToString();
  ASSERT_EQ(committed.outcome, TxState::kCommit);
  Producer plain(Opts("plain"));
  ASSERT_TRUE(plain.Start().ok());
  auto again = plain.Send({.topic = "t", .body = "plain copy", .id = "order-7"});
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_TRUE(again->duplicate) << "the transaction stored order-7 already";
  ASSERT_TRUE(again->offset.has_value());

  plain.Shutdown();
  tp.reset();
  broker_->Stop();
  broker_ = testing::StartBroker(options_);
  Producer after(Opts("plain"));
  ASSERT_TRUE(after.Start().ok());
  auto once_more = after.Send({.topic = "t", .body = "plain copy", .id = "order-7"});
  ASSERT_TRUE(once_more.ok()) << once_more.status().ToString();
  EXPECT_TRUE(once_more->duplicate) << "the window survives a restart";
  EXPECT_EQ(once_more->queue, again->queue);
  EXPECT_EQ(once_more->offset, again->offset);

  auto seen = testing::DrainTopic(broker_->endpoint(), "t", 1);
  EXPECT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen["order-7"], 1);
}

TEST_F(Transactions, ACommitOfAnIdAlreadySentIsNotStoredAgain) {
  Producer plain(Opts("plain"));
  ASSERT_TRUE(plain.Start().ok());
  ASSERT_TRUE(plain.Send({.topic = "t", .body = "plain copy", .id = "order-8"}).ok());
  std::atomic<TxState> answer{TxState::kUnknown};
  auto tp = MakeProducer(answer);
  auto committed = tp->SendInTransaction(
      {{.topic = "t", .body = "tx copy", .id = "order-8"}, {.topic = "t", .body = "new one"}},
      [](const std::vector<Message>&) { return TxState::kCommit; });
  ASSERT_TRUE(committed.ok()) << committed.status.ToString();
  EXPECT_EQ(committed.outcome, TxState::kCommit);
  auto seen = testing::DrainTopic(broker_->endpoint(), "t", 2);
  EXPECT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen["order-8"], 1) << "the plain send stored it; the commit must not again";
  EXPECT_EQ(seen[committed.message_ids[1]], 1) << "the rest of the transaction commits";
  EXPECT_EQ(admin_->TopicMessages("t"), 2);
}

TEST_F(Transactions, ATransactionRetriedWithTheSameMessageIdIsDeliveredOnce) {
  // The producer committed, but the answer was lost (unknown outcome), so
  // it runs the transaction again under a new transaction id, same message id.
  std::atomic<TxState> answer{TxState::kCommit};
  auto tp = MakeProducer(answer);
  auto first = tp->SendInTransaction({.topic = "t", .body = "pay", .id = "payment-9"},
                                     [](const Message&) { return TxState::kUnknown; });
  ASSERT_TRUE(first.ok()) << first.status.ToString();
  ASSERT_TRUE(WaitFor([&] {  // the check-back commits it
    auto info = admin_->Show(first.transaction_id);
    return info.ok() && info->state == wire::TxState::COMMITTED;
  }));
  auto retry = tp->SendInTransaction({.topic = "t", .body = "pay", .id = "payment-9"},
                                     [](const Message&) { return TxState::kCommit; });
  ASSERT_TRUE(retry.ok()) << retry.status.ToString();
  EXPECT_NE(retry.transaction_id, first.transaction_id);
  EXPECT_EQ(retry.outcome, TxState::kCommit);
  auto seen = testing::DrainTopic(broker_->endpoint(), "t", 1);
  EXPECT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen["payment-9"], 1) << "two commits of one message id, one delivery";
  EXPECT_EQ(admin_->TopicMessages("t"), 1);
}

TEST_F(Transactions, BadTransactionRequestsAreRefusedClearly) {
  auto bad_id = admin_->Call([](wire::Envelope::Builder e) {
    auto h = e.initSendHalf();
    h.setTransactionId("has space");
    h.setProducerGroup("g");
    h.initMessages(1)[0].setTopic("t");
  });
  EXPECT_EQ(bad_id.status().code(), StatusCode::kInvalidArgument);
  auto no_messages = admin_->Call([](wire::Envelope::Builder e) {
    auto h = e.initSendHalf();
    h.setTransactionId("tx-1");
    h.setProducerGroup("g");
  });
  EXPECT_EQ(no_messages.status().code(), StatusCode::kInvalidArgument);
  auto unknown_outcome = admin_->Call([](wire::Envelope::Builder e) {
    auto end = e.initEndTransaction();
    end.setTransactionId("tx-1");
    end.setOutcome(wire::TxOutcome::UNKNOWN);
  });
  EXPECT_EQ(unknown_outcome.status().code(), StatusCode::kInvalidArgument);
  auto dup = admin_->Call([](wire::Envelope::Builder e) {
    auto h = e.initSendHalf();
    h.setTransactionId("tx-2");
    h.setProducerGroup("g");
    auto m = h.initMessages(2);
    for (int i = 0; i < 2; ++i) {
      m[i].setId("same");
      m[i].setTopic("t");
    }
  });
  EXPECT_EQ(dup.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(dup.status().message().find("twice"), std::string::npos);
}

}  // namespace
}  // namespace txmq
