// Transactions at their edges: a commit whose half message is gone from the
// store, a damaged check schedule at start-up, a half resent after its
// transaction ended, and the 64-message and size limits of one transaction.
// The damage is made with the broker stopped, through the store itself.
#include <gtest/gtest.h>
#include <atomic>
#include <memory>
#include <sstream>

#include "protocol/src/codec.h"
#include "protocol/src/event_fd.h"
#include "protocol/src/log.h"
#include "storage/src/broker_store.h"
#include "tests/testutil/admin_client.h"
#include "tests/testutil/log_capture.h"
#include "tests/testutil/testutil.h"
#include "tests/testutil/tx_requests.h"
#include "txmq/transaction_producer.h"

namespace txmq {
namespace {

using namespace std::chrono_literals;
using testing::AdminClient;
using testing::HalfMessage;

using BrokerLogCapture = testing::LogCapture;

class TxEdges : public ::testing::Test {
 protected:
  void SetUp() override {
    options_ = testing::TestBrokerOptions(dir_.Sub("data"));
    options_.transaction_timeout = 1h;  // no check-back decides anything here
    Start();
  }
  void Start() {
    broker_ = testing::StartBroker(options_);
    ASSERT_NE(broker_, nullptr);
    options_.listen = broker_->endpoint();  // the same address after a restart
    admin_ = std::make_unique<AdminClient>(broker_->endpoint());
  }
  void Stop() {
    admin_.reset();
    broker_.reset();
  }
  // Runs `change` on the stopped broker's store and writes it as one round.
  void ChangeStore(const std::function<void(storage::BrokerStore&)>& change) {
    storage::StoreOptions o;
    o.dir = options_.data_dir;
    o.segment_bytes = options_.segment_bytes;
    o.max_round_bytes = options_.segment_bytes / 4;
    EventFd done;
    auto store = storage::BrokerStore::Open(o, &done);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    change(**store);
    auto round = (*store)->WriteInline(static_cast<int64_t>(1) << 50);
    ASSERT_TRUE(round->status().ok()) << round->status().ToString();
    round->Complete();
  }

  testing::TempDir dir_;
  BrokerOptions options_;
  std::unique_ptr<Broker> broker_;
  std::unique_ptr<AdminClient> admin_;
};

TEST_F(TxEdges, ACommitWhoseHalfIsMissingDeliversTheRestAndSaysWhichIsMissing) {
  ASSERT_TRUE(
      testing::SendHalf(*admin_, "tx-torn", "orders", {{.id = "gone"}, {.id = "kept"}}).ok());
  Stop();
  ChangeStore([](storage::BrokerStore& store) { store.DeleteHalf("tx-torn", 0); });
  BrokerLogCapture log;
  Start();
  auto info = admin_->Show("tx-torn");
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(info->state, wire::TxState::PREPARED);
  EXPECT_EQ(info->message_ids, (std::vector<std::string>{"gone", "kept"}))
      << "the record still names both";

  auto end = admin_->End("tx-torn", /*commit=*/true);
  ASSERT_TRUE(end.ok()) << end.status().ToString();
  EXPECT_EQ(*end, wire::TxState::COMMITTED);
  auto seen = testing::DrainTopic(broker_->endpoint(), "t", 1);
  EXPECT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen["kept"], 1) << "the messages that are there are committed";
  EXPECT_FALSE(seen.count("gone"));
  const std::string text = log.text();
  EXPECT_NE(text.find("transaction tx-torn: half message 0 is missing"), std::string::npos)
      << "nothing said that a committed message was lost:\n"
      << text;
  // The broker is none the worse: the next transaction commits normally.
  ASSERT_TRUE(testing::SendHalf(*admin_, "tx-next", "orders", {{.id = "next"}}).ok());
  ASSERT_TRUE(admin_->End("tx-next", true).ok());
  EXPECT_EQ(admin_->TopicMessages("t"), 2);
}

TEST_F(TxEdges, AScheduledCheckOfNoOpenTransactionIsRefusedAtStartNamingIt) {
  ASSERT_TRUE(testing::SendHalf(*admin_, "tx-done", "orders", {{.id = "d"}}).ok());
  ASSERT_TRUE(admin_->End("tx-done", true).ok());
  Stop();
  for (const std::string ghost : {"tx-ghost", "tx-done"}) {  // no record; a resolved one
    SCOPED_TRACE(ghost);
    ChangeStore([&](storage::BrokerStore& store) { store.ScheduleCheck(12345, ghost); });
    auto refused = Broker::Start(options_);
    ASSERT_FALSE(refused.ok()) << "started on a schedule that names " << ghost;
    EXPECT_EQ(refused.status().code(), StatusCode::kCorruption) << refused.status().ToString();
    EXPECT_NE(refused.status().message().find("'" + ghost + "'"), std::string::npos)
        << refused.status().ToString();
    ChangeStore([&](storage::BrokerStore& store) { store.UnscheduleCheck(12345, ghost); });
  }
  Start();  // repaired: it starts, and what was there is intact
  auto info = admin_->Show("tx-done");
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(info->state, wire::TxState::COMMITTED);
}

TEST_F(TxEdges, AnOpenTransactionMissingFromTheScheduleIsScheduledAgainAndListed) {
  ASSERT_TRUE(testing::SendHalf(*admin_, "tx-lost", "orders", {{.id = "l"}}).ok());
  auto before = admin_->Show("tx-lost");
  ASSERT_TRUE(before.ok());
  Stop();
  // The schedule entry is gone; the record and the half are there.
  ChangeStore([](storage::BrokerStore& store) {
    auto record = store.GetTx("tx-lost");
    ASSERT_TRUE(record.has_value());
    store.UnscheduleCheck(record->next_check_ms, "tx-lost");
  });
  BrokerLogCapture log;
  Start();
  EXPECT_NE(log.text().find("'tx-lost' of group 'orders' is open but was missing from the check "
                            "schedule"),
            std::string::npos)
      << log.text();
  auto listed = admin_->ListTransactions();
  ASSERT_EQ(listed.size(), 1u) << "an open transaction vanished from the operator's view";
  EXPECT_EQ(listed[0].id, "tx-lost");
  EXPECT_EQ(admin_->OpenTransactions(), 1u);
  auto end = admin_->End("tx-lost", true);
  ASSERT_TRUE(end.ok()) << end.status().ToString();
  auto seen = testing::DrainTopic(broker_->endpoint(), "t", 1);
  EXPECT_EQ(seen["l"], 1);
}

TEST_F(TxEdges, AHalfResentAfterItsTransactionEndedChangesNothing) {
  for (bool commit : {true, false}) {
    const std::string tx = commit ? "tx-committed" : "tx-rolled-back";
    SCOPED_TRACE(tx);
    ASSERT_TRUE(testing::SendHalf(*admin_, tx, "orders", {{.id = tx + "-first"}}).ok());
    ASSERT_TRUE(admin_->End(tx, commit).ok());
    // A late resend of the half (or one with different messages under the
    // same id) is answered with the final state; nothing is stored again.
    auto late =
        testing::SendHalf(*admin_, tx, "orders", {{.id = tx + "-first"}, {.id = tx + "-smuggled"}});
    ASSERT_TRUE(late.ok()) << late.status().ToString();
    EXPECT_EQ(*late, commit ? wire::TxState::COMMITTED : wire::TxState::ROLLED_BACK);
    auto info = admin_->Show(tx);
    ASSERT_TRUE(info.ok());
    EXPECT_EQ(info->message_ids, std::vector<std::string>{tx + "-first"});
    EXPECT_EQ(admin_->End(tx, !commit).status().code(), StatusCode::kConflict)
        << "the transaction did not start over";
  }
  EXPECT_EQ(admin_->OpenTransactions(), 0u);
  auto seen = testing::DrainTopic(broker_->endpoint(), "t", 1);
  EXPECT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen["tx-committed-first"], 1);
  // The same after a restart, when the outcome is read from the store.
  Stop();
  Start();
  auto late = testing::SendHalf(*admin_, "tx-committed", "orders", {{.id = "again"}});
  ASSERT_TRUE(late.ok()) << late.status().ToString();
  EXPECT_EQ(*late, wire::TxState::COMMITTED);
  EXPECT_EQ(admin_->OpenTransactions(), 0u);
  EXPECT_EQ(admin_->TopicMessages("t"), 1);
}

TEST_F(TxEdges, SixtyFourMessagesIsTheLimitOfOneTransaction) {
  constexpr size_t kMax = wire::kMaxMessagesPerRequest;
  static_assert(kMax == 64, "README promises 64");
  auto many = [](const std::string& prefix, size_t n) {
    std::vector<HalfMessage> list(n);
    for (size_t i = 0; i < n; ++i) list[i].id = prefix + std::to_string(i);
    return list;
  };
  auto over = testing::SendHalf(*admin_, "tx-65", "orders", many("o", kMax + 1));
  EXPECT_EQ(over.status().code(), StatusCode::kInvalidArgument) << over.status().ToString();
  EXPECT_NE(over.status().message().find("1-64 messages (got 65)"), std::string::npos)
      << over.status().ToString();
  EXPECT_EQ(admin_->Show("tx-65").status().code(), StatusCode::kNotFound);

  ASSERT_TRUE(testing::SendHalf(*admin_, "tx-64", "orders", many("m", kMax)).ok());
  ASSERT_TRUE(admin_->End("tx-64", true).ok());
  auto seen = testing::DrainTopic(broker_->endpoint(), "t", kMax);
  EXPECT_EQ(seen.size(), kMax) << "every one of the 64 is delivered";

  // The client library refuses 65 before sending anything.
  TransactionProducer p({.broker = broker_->endpoint(), .group = "orders"},
                        [](const CheckRequest&) { return TxState::kUnknown; });
  ASSERT_TRUE(p.Start().ok());
  std::vector<Message> messages(kMax + 1, Message{.topic = "t", .body = "x"});
  bool ran = false;
  auto r = p.SendInTransaction(messages, [&](const std::vector<Message>&) {
    ran = true;
    return TxState::kCommit;
  });
  EXPECT_EQ(r.status.code(), StatusCode::kInvalidArgument) << r.status.ToString();
  EXPECT_TRUE(r.transaction_id.empty()) << "nothing was sent";
  EXPECT_FALSE(ran);
}

TEST_F(TxEdges, SixtyFourMessagesFillingTheSizeLimitExactlyFitAndOneByteMoreDoesNot) {
  Stop();
  options_.max_message_bytes = 64 * 1024;
  Start();
  constexpr size_t kEach = 1024;  // 64 x 1 KiB bodies = the limit
  auto messages = [&](size_t extra) {
    std::vector<HalfMessage> list(wire::kMaxMessagesPerRequest);
    for (size_t i = 0; i < list.size(); ++i) {
      list[i].id = "s" + std::to_string(i);
      list[i].body = std::string(kEach + (i == 0 ? extra : 0), 'b');
    }
    return list;
  };
  auto over = testing::SendHalf(*admin_, "tx-over", "orders", messages(1));
  EXPECT_EQ(over.status().code(), StatusCode::kTooLarge) << over.status().ToString();
  EXPECT_NE(over.status().message().find(std::to_string(64 * 1024 + 1) + " bytes"),
            std::string::npos)
      << over.status().ToString();
  auto exact = testing::SendHalf(*admin_, "tx-exact", "orders", messages(0));
  ASSERT_TRUE(exact.ok()) << exact.status().ToString();
  ASSERT_TRUE(admin_->End("tx-exact", true).ok());
  EXPECT_EQ(admin_->TopicMessages("t"), 64);
}

}  // namespace
}  // namespace txmq
