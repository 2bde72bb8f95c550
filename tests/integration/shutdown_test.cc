// Shutdown from one thread while others are inside Send or
// SendInTransaction: every call returns a status (never a crash, never a
// use of freed memory), and Shutdown returns only once no call uses the
// producer any more. Run under the sanitizer build to see the difference.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "tests/testutil/testutil.h"
#include "txmq/local_store.h"
#include "txmq/producer.h"
#include "txmq/transaction_producer.h"

namespace txmq {
namespace {

using namespace std::chrono_literals;
using testing::WaitFor;

class Shutdown : public ::testing::Test {
 protected:
  void SetUp() override {
    options_ = testing::TestBrokerOptions(dir_.Sub("data"));
    broker_ = testing::StartBroker(options_);
    ASSERT_NE(broker_, nullptr);
  }

  // What a call racing Shutdown may return: success, or a status that says
  // the producer shut down.
  static void ExpectOkOrShutDown(const Status& s) {
    if (s.ok()) return;
    EXPECT_TRUE(s.code() == StatusCode::kUnavailable || s.code() == StatusCode::kFailedPrecondition)
        << s.ToString();
    EXPECT_NE(s.message().find("shut down"), std::string::npos) << s.ToString();
  }

  testing::TempDir dir_;
  BrokerOptions options_;
  std::unique_ptr<Broker> broker_;
};

TEST_F(Shutdown, ProducerShutDownWhileThreadsSendFailsThemCleanly) {
  constexpr int kRounds = 15, kThreads = 4;
  for (int round = 0; round < kRounds; ++round) {
    Producer p({.broker = broker_->endpoint(), .group = "racers"});
    ASSERT_TRUE(p.Start().ok());
    std::atomic<int> acked{0};
    std::vector<std::thread> senders;
    for (int t = 0; t < kThreads; ++t) {
      senders.emplace_back([&, t] {
        // Until the producer refuses: sync and async sends interleaved.
        for (int i = 0; i < 100'000; ++i) {
          Status s;
          if ((i + t) % 2 == 0) {
            auto r = p.Send({.topic = "race", .body = "x"});
            s = r.ok() ? Status::OK() : r.status();
          } else {
            auto r = p.SendAsync({.topic = "race", .body = "y"}).get();
            s = r.ok() ? Status::OK() : r.status();
          }
          if (s.ok()) acked++;
          ExpectOkOrShutDown(s);
          if (s.code() == StatusCode::kFailedPrecondition) return;
        }
      });
    }
    ASSERT_TRUE(WaitFor([&] { return acked.load() >= 20 * (round % 3); }));
    p.Shutdown();
    for (auto& t : senders) t.join();
    auto late = p.Send({.topic = "race", .body = "late"});
    EXPECT_EQ(late.status().code(), StatusCode::kFailedPrecondition);
    EXPECT_EQ(p.Start().code(), StatusCode::kFailedPrecondition) << "a producer starts once";
  }
}

TEST_F(Shutdown, TransactionProducerShutDownWhileThreadsSendInTransaction) {
  constexpr int kRounds = 10, kThreads = 4;
  for (int round = 0; round < kRounds; ++round) {
    TransactionProducer p({.broker = broker_->endpoint(), .group = "tx-racers"},
                          [](const CheckRequest&) { return TxState::kRollback; });
    ASSERT_TRUE(p.Start().ok());
    std::atomic<int> done{0};
    std::vector<std::thread> senders;
    for (int t = 0; t < kThreads; ++t) {
      senders.emplace_back([&, t] {
        for (int i = 0; i < 100'000; ++i) {
          Status s;
          if (t == 0) {
            auto r = p.Send({.topic = "tx-race", .body = "plain"});
            s = r.ok() ? Status::OK() : r.status();
          } else {
            auto r = p.SendInTransaction({.topic = "tx-race", .body = "tx"}, [&](const Message&) {
              std::this_thread::sleep_for(std::chrono::milliseconds(i % 3));
              return i % 2 == 0 ? TxState::kCommit : TxState::kRollback;
            });
            s = r.status;
          }
          if (s.ok()) done++;
          ExpectOkOrShutDown(s);
          if (s.code() == StatusCode::kFailedPrecondition) return;
        }
      });
    }
    ASSERT_TRUE(WaitFor([&] { return done.load() >= 10 * (round % 3); }));
    p.Shutdown();
    for (auto& t : senders) t.join();
    auto late = p.SendInTransaction({.topic = "tx-race", .body = "late"},
                                    [](const Message&) { return TxState::kCommit; });
    EXPECT_EQ(late.status.code(), StatusCode::kFailedPrecondition);
    EXPECT_NE(late.status.message().find("shut down"), std::string::npos);
    EXPECT_TRUE(late.transaction_id.empty()) << "nothing was sent";
  }
}

TEST_F(Shutdown, ALocalTransactionOutlastingTheGraceFailsItsEndAndShutdownWaitsForIt) {
  // The local step runs past Shutdown's grace (send_timeout): the end can
  // no longer be sent and the call says why; Shutdown returns only after
  // the call has left the producer.
  TransactionProducer p(
      {.broker = broker_->endpoint(), .group = "slow-local", .send_timeout = 300ms},
      [](const CheckRequest&) { return TxState::kUnknown; });
  ASSERT_TRUE(p.Start().ok());
  std::atomic<bool> in_local{false}, shutting_down{false}, local_returned{false};
  TransactionResult result;
  std::thread caller([&] {
    result = p.SendInTransaction({.topic = "slow", .body = "x"}, [&](const Message&) {
      in_local = true;
      EXPECT_TRUE(WaitFor([&] { return shutting_down.load(); }));
      std::this_thread::sleep_for(1s);  // well past the 300 ms grace
      local_returned = true;
      return TxState::kCommit;
    });
  });
  ASSERT_TRUE(WaitFor([&] { return in_local.load(); }));
  shutting_down = true;
  p.Shutdown();
  // The call leaves the producer after its local step returned and before
  // it returns itself: only the first is ordered before Shutdown's return
  // (the caller may not have stored the result yet).
  EXPECT_TRUE(local_returned.load()) << "Shutdown returned while a call still used the producer";
  caller.join();
  EXPECT_EQ(result.status.code(), StatusCode::kUnavailable) << result.status.ToString();
  EXPECT_NE(result.status.message().find("shut down"), std::string::npos)
      << result.status.ToString();
  EXPECT_NE(result.status.message().find(result.transaction_id), std::string::npos);
  EXPECT_EQ(result.local, TxState::kCommit);
  EXPECT_EQ(result.outcome, TxState::kUnknown);
}

TEST_F(Shutdown, StoreBackedProducerShutDownWhileThreadsSendInTransaction) {
  testing::TempDir store_dir;
  auto store = LocalStore::Open(store_dir.Sub("store"));
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  constexpr int kRounds = 6, kThreads = 3;
  for (int round = 0; round < kRounds; ++round) {
    TransactionProducer p({.broker = broker_->endpoint(), .group = "store-racers"}, **store);
    ASSERT_TRUE(p.Start().ok());
    std::atomic<int> done{0};
    std::vector<std::thread> senders;
    for (int t = 0; t < kThreads; ++t) {
      senders.emplace_back([&, t] {
        for (int i = 0; i < 100'000; ++i) {
          auto r = p.SendInTransaction({.topic = "store-race", .body = "tx"},
                                       [&](LocalTxn& tx, const Message& m) {
                                         EXPECT_TRUE(tx.Put("row/" + m.id, std::to_string(t)).ok());
                                         return TxState::kCommit;
                                       });
          Status s = r.status;
          if (s.ok()) done++;
          ExpectOkOrShutDown(s);
          if (s.code() == StatusCode::kFailedPrecondition) return;
        }
      });
    }
    ASSERT_TRUE(WaitFor([&] { return done.load() >= 5 * (round % 3); }));
    p.Shutdown();
    for (auto& t : senders) t.join();
  }
}

}  // namespace
}  // namespace txmq
