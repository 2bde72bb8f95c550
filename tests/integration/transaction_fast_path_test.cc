// The transactional fast path: ends sent in the background (alone, or
// riding on the next half message), and SendInTransactionAsync keeping
// many transactions of one producer in flight. Against an embedded broker
// with fast check timings (first check after 300 ms, 3 checks before a
// transaction is stuck).
//
// The checkers here answer from a "database" the local transactions write
// before they return, as a real checker must: COMMIT for what committed,
// ROLLBACK for what decided not to, UNKNOWN for anything else. So an end
// that is slow to arrive never changes an outcome, and a message that is
// delivered was delivered by the end or by a check that asked the
// database.
#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <mutex>
#include <thread>

#include "protocol/src/codec.h"
#include "protocol/src/message_codec.h"
#include "protocol/src/util.h"
#include "tests/testutil/admin_client.h"
#include "tests/testutil/testutil.h"
#include "txmq/consumer.h"
#include "txmq/local_store.h"
#include "txmq/transaction_producer.h"

namespace txmq {
namespace {

using namespace std::chrono_literals;
using testing::AdminClient;
using testing::WaitFor;

// What the local transactions decided, by message body.
class Database {
 public:
  void Record(const std::string& body, TxState decision) {
    std::lock_guard<std::mutex> lock(mu_);
    decided_[body] = decision;
  }
  TxState Answer(const CheckRequest& check) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = decided_.find(check.message().body);
    return it == decided_.end() ? TxState::kUnknown : it->second;
  }
  std::set<std::string> Committed() {
    std::lock_guard<std::mutex> lock(mu_);
    std::set<std::string> out;
    for (const auto& [body, d] : decided_) {
      if (d == TxState::kCommit) out.insert(body);
    }
    return out;
  }

 private:
  std::mutex mu_;
  std::map<std::string, TxState> decided_;
};

class FastPath : public ::testing::Test {
 protected:
  void SetUp() override {
    options_ = testing::TestBrokerOptions(dir_.Sub("data"));
    broker_ = testing::StartBroker(options_);
    ASSERT_NE(broker_, nullptr);
  }

  ProducerOptions Opts(TransactionEndMode mode) {
    return {.broker = broker_->endpoint(), .group = "orders", .end_mode = mode};
  }

  std::unique_ptr<TransactionProducer> Make(ProducerOptions options) {
    auto p = std::make_unique<TransactionProducer>(
        std::move(options), [this](const CheckRequest& c) { return db_.Answer(c); });
    EXPECT_TRUE(p->Start().ok());
    return p;
  }

  // The broker's count of ends that arrived riding on a half.
  uint64_t EndsCarried() {
    AdminClient admin(broker_->endpoint());
    auto r = admin.Call([](wire::Envelope::Builder e) { e.setStatus(); });
    return r.ok() ? r->envelope().getStatusOk().getTransactions().getEndsCarried() : 0;
  }

  // Bodies delivered on `topic` and how often, once `expected` arrived.
  std::map<std::string, int> Delivered(const std::string& topic, size_t expected) {
    std::map<std::string, int> by_body;
    Consumer c({.broker = broker_->endpoint(), .group = "check", .long_poll = 300ms});
    std::mutex mu;
    size_t seen = 0;
    EXPECT_TRUE(c.Subscribe(topic, [&](const Received& m) {
                   std::lock_guard<std::mutex> lock(mu);
                   by_body[m.body]++;
                   ++seen;
                   return ConsumeResult::Success();
                 }).ok());
    EXPECT_TRUE(c.Start().ok());
    WaitFor(
        [&] {
          std::lock_guard<std::mutex> lock(mu);
          return seen >= expected;
        },
        30s);
    std::this_thread::sleep_for(500ms);  // anything more (a duplicate) would show up now
    c.Shutdown();
    return by_body;
  }

  testing::TempDir dir_;
  BrokerOptions options_;
  std::unique_ptr<Broker> broker_;
  Database db_;
};

std::set<std::string> Keys(const std::map<std::string, int>& m) {
  std::set<std::string> out;
  for (const auto& [k, v] : m) out.insert(k);
  return out;
}

TEST_F(FastPath, BackgroundEndsCommitAndRideOnTheNextHalf) {
  auto p = Make(Opts(TransactionEndMode::kBackground));
  constexpr int kCount = 40;
  for (int i = 0; i < kCount; ++i) {
    const std::string body = "m" + std::to_string(i);
    const TxState decision = i % 4 == 3 ? TxState::kRollback : TxState::kCommit;
    auto r = p->SendInTransaction({.topic = "t", .body = body}, [&](const Message&) {
      db_.Record(body, decision);
      return decision;
    });
    ASSERT_TRUE(r.ok()) << r.status.ToString();
    EXPECT_EQ(r.local, decision);
    EXPECT_TRUE(r.end_pending);
    EXPECT_EQ(r.outcome, TxState::kUnknown) << "not confirmed yet, so not claimed";
  }
  ASSERT_TRUE(p->FlushEnds(20s).ok());
  // Each end but the last had a next half to ride on; on a busy machine
  // some go alone after the linger, but not all of them.
  const uint64_t carried = EndsCarried();
  EXPECT_GT(carried, 0u);
  std::cout << carried << " of " << kCount << " ends rode on a half\n";
  auto delivered = Delivered("t", db_.Committed().size());
  EXPECT_EQ(Keys(delivered), db_.Committed());
  for (const auto& [body, n] : delivered) EXPECT_EQ(n, 1) << body;
}

TEST_F(FastPath, ConfirmedStaysTheDefaultAndReportsTheRecordedOutcome) {
  EXPECT_EQ(ProducerOptions{}.end_mode, TransactionEndMode::kConfirmed);
  auto p = Make(Opts(TransactionEndMode::kConfirmed));
  auto r = p->SendInTransaction({.topic = "t", .body = "c"}, [&](const Message&) {
    db_.Record("c", TxState::kCommit);
    return TxState::kCommit;
  });
  ASSERT_TRUE(r.ok()) << r.status.ToString();
  EXPECT_FALSE(r.end_pending);
  EXPECT_EQ(r.outcome, TxState::kCommit);
  EXPECT_TRUE(p->FlushEnds(1s).ok());
}

TEST_F(FastPath, ShutdownSendsTheEndsStillWaiting) {
  constexpr int kCount = 20;
  {
    auto p = Make(Opts(TransactionEndMode::kBackground));
    for (int i = 0; i < kCount; ++i) {
      const std::string body = "s" + std::to_string(i);
      auto r = p->SendInTransaction({.topic = "t", .body = body}, [&](const Message&) {
        db_.Record(body, TxState::kCommit);
        return TxState::kCommit;
      });
      ASSERT_TRUE(r.ok()) << r.status.ToString();
    }
    p->Shutdown();  // the last end has not left yet: Shutdown sends it
  }
  // No producer of the group is left to answer a check: only the ends can
  // have committed these.
  AdminClient admin(broker_->endpoint());
  ASSERT_TRUE(WaitFor([&] { return admin.OpenTransactions() == 0; }, 5s))
      << admin.OpenTransactions() << " transactions still open";
  auto delivered = Delivered("t", kCount);
  EXPECT_EQ(delivered.size(), static_cast<size_t>(kCount));
}

// The broker goes away right after the half: the end cannot be delivered,
// the producer shuts down with it pending. Check-back, asking the store,
// commits it once the broker is back; nothing is lost or doubled.
TEST_F(FastPath, ALostBackgroundEndIsResolvedByCheckBackFromTheStore) {
  auto opened = LocalStore::Open(dir_.Sub("orders-db"));
  ASSERT_TRUE(opened.ok());
  LocalStore& store = **opened;
  ProducerOptions o = Opts(TransactionEndMode::kBackground);
  o.send_timeout = 500ms;
  o.retries = 0;
  std::string tx_id;
  {
    TransactionProducer p(o, store);
    ASSERT_TRUE(p.Start().ok());
    auto r =
        p.SendInTransaction({.topic = "t", .body = "lost-end"}, [&](LocalTxn& tx, const Message&) {
          broker_->Stop();  // before the end can go
          EXPECT_TRUE(tx.Put("order/1", "created").ok());
          return TxState::kCommit;
        });
    ASSERT_TRUE(r.ok()) << r.status.ToString();
    EXPECT_TRUE(r.end_pending);
    tx_id = r.transaction_id;
    EXPECT_EQ(p.FlushEnds(300ms).code(), StatusCode::kTimeout);
  }  // shuts down with the end unconfirmed
  EXPECT_EQ(*store.Get("order/1"), "created");

  broker_ = testing::StartBroker(options_);
  ASSERT_NE(broker_, nullptr);
  AdminClient admin(broker_->endpoint());
  EXPECT_EQ(admin.Show(tx_id)->state, wire::TxState::PREPARED);
  o.broker = broker_->endpoint();
  TransactionProducer again(o, store);  // same store: it answers the check
  ASSERT_TRUE(again.Start().ok());
  ASSERT_TRUE(WaitFor(
      [&] {
        auto info = admin.Show(tx_id);
        return info.ok() && info->state == wire::TxState::COMMITTED;
      },
      20s));
  auto delivered = Delivered("t", 1);
  EXPECT_EQ(delivered, (std::map<std::string, int>{{"lost-end", 1}}));
}

class FastPathWindow : public FastPath, public ::testing::WithParamInterface<TransactionEndMode> {};

TEST_P(FastPathWindow, KeepsWInFlightAndNoMore) {
  constexpr int kWindow = 8;
  ProducerOptions o = Opts(GetParam());
  o.transaction_window = kWindow;
  auto p = Make(o);
  // The local transactions wait until the test lets them go: every call
  // that returned before that has its half in flight.
  std::atomic<bool> go{false};
  std::atomic<int> submitted{0};
  std::vector<std::future<TransactionResult>> results;
  auto local = [&](const Message& m) {
    WaitFor([&] { return go.load(); }, 30s);
    db_.Record(m.body, TxState::kCommit);
    return TxState::kCommit;
  };
  for (int i = 0; i < kWindow; ++i) {
    results.push_back(
        p->SendInTransactionAsync({.topic = "w", .body = "w" + std::to_string(i)}, local));
    ++submitted;
  }
  // One more waits for room.
  std::thread extra([&] {
    results.push_back(p->SendInTransactionAsync({.topic = "w", .body = "extra"}, local));
    ++submitted;
  });
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(submitted.load(), kWindow) << "the window let a ninth transaction in";
  go = true;
  extra.join();
  for (auto& f : results) {
    auto r = f.get();
    ASSERT_TRUE(r.ok()) << r.status.ToString();
    EXPECT_EQ(r.local, TxState::kCommit);
    if (GetParam() == TransactionEndMode::kConfirmed) {
      EXPECT_EQ(r.outcome, TxState::kCommit);
    }
  }
  ASSERT_TRUE(p->FlushEnds(20s).ok());
  auto delivered = Delivered("w", kWindow + 1);
  EXPECT_EQ(delivered.size(), static_cast<size_t>(kWindow + 1));
}

TEST_P(FastPathWindow, EveryResultOfManyIsRight) {
  constexpr int kCount = 300;
  ProducerOptions o = Opts(GetParam());
  o.transaction_window = 32;
  o.local_threads = 2;
  auto p = Make(o);
  std::vector<std::future<TransactionResult>> results;
  std::vector<TxState> decisions;
  for (int i = 0; i < kCount; ++i) {
    const TxState decision = i % 5 == 3   ? TxState::kRollback
                             : i % 5 == 4 ? TxState::kUnknown
                                          : TxState::kCommit;
    decisions.push_back(decision);
    results.push_back(p->SendInTransactionAsync(
        {.topic = "many", .body = "n" + std::to_string(i)}, [this, decision](const Message& m) {
          // Undecided ones never commit: a check may learn that.
          db_.Record(m.body, decision == TxState::kUnknown ? TxState::kRollback : decision);
          return decision;
        }));
  }
  std::set<std::string> ids;
  for (int i = 0; i < kCount; ++i) {
    auto r = results[static_cast<size_t>(i)].get();
    ASSERT_TRUE(r.ok()) << i << ": " << r.status.ToString();
    EXPECT_EQ(r.local, decisions[static_cast<size_t>(i)]) << i;
    ASSERT_EQ(r.message_ids.size(), 1u);
    EXPECT_TRUE(ids.insert(r.transaction_id).second) << "transaction ids are unique";
    const bool decided = decisions[static_cast<size_t>(i)] != TxState::kUnknown;
    if (GetParam() == TransactionEndMode::kConfirmed) {
      EXPECT_EQ(r.outcome, decisions[static_cast<size_t>(i)]) << i;
      EXPECT_FALSE(r.end_pending);
    } else {
      EXPECT_EQ(r.outcome, TxState::kUnknown) << i;
      EXPECT_EQ(r.end_pending, decided) << i;
    }
  }
  ASSERT_TRUE(p->FlushEnds(30s).ok());
  auto delivered = Delivered("many", db_.Committed().size());
  EXPECT_EQ(Keys(delivered), db_.Committed());
  for (const auto& [body, n] : delivered) EXPECT_EQ(n, 1) << body;
}

// Shutdown while 60 transactions are in flight whose local transactions
// take 50 ms each, one at a time: far more than Shutdown's grace
// (send_timeout, 300 ms). The local transactions not started by then never
// run; every future is complete when Shutdown returns; whatever committed
// locally is delivered once (by its end, or by a check a live member of the
// group answers from the database), and nothing else is.
TEST_P(FastPathWindow, ShutdownWithTransactionsInFlightLosesNothing) {
  constexpr int kCount = 60;
  std::vector<std::future<TransactionResult>> results;
  {
    ProducerOptions o = Opts(GetParam());
    o.transaction_window = kCount;
    o.send_timeout = 300ms;
    auto p = Make(o);
    for (int i = 0; i < kCount; ++i) {
      results.push_back(p->SendInTransactionAsync({.topic = "sd", .body = "sd" + std::to_string(i)},
                                                  [this](const Message& m) {
                                                    std::this_thread::sleep_for(50ms);
                                                    db_.Record(m.body, TxState::kCommit);
                                                    return TxState::kCommit;
                                                  }));
    }
    p->Shutdown();
    auto late = p->SendInTransactionAsync({.topic = "sd", .body = "late"},
                                          [](const Message&) { return TxState::kCommit; });
    ASSERT_EQ(late.wait_for(0s), std::future_status::ready);
    EXPECT_EQ(late.get().status.code(), StatusCode::kFailedPrecondition);
  }
  int never_ran = 0;
  const std::set<std::string> committed = db_.Committed();
  for (auto& f : results) {
    ASSERT_EQ(f.wait_for(0s), std::future_status::ready) << "Shutdown returned before it";
    auto r = f.get();
    ASSERT_EQ(r.message_ids.size(), 1u) << r.status.ToString();
    if (!r.local) {
      ++never_ran;
      EXPECT_EQ(r.status.code(), StatusCode::kUnavailable) << r.status.ToString();
      EXPECT_NE(r.status.message().find("shut down"), std::string::npos) << r.status.ToString();
    }
  }
  EXPECT_GT(never_ran, 0) << "local transactions were started after Shutdown gave up waiting";
  EXPECT_EQ(static_cast<size_t>(kCount - never_ran), committed.size());
  auto checker = Make(Opts(TransactionEndMode::kConfirmed));
  auto delivered = Delivered("sd", committed.size());
  EXPECT_EQ(Keys(delivered), committed);
  for (const auto& [body, n] : delivered) EXPECT_EQ(n, 1) << body;
  // The halves whose local transaction never ran are rolled back by
  // check-back (the database never heard of them: the checker says
  // UNKNOWN, so they end up stuck, never delivered).
}

INSTANTIATE_TEST_SUITE_P(EndModes, FastPathWindow,
                         ::testing::Values(TransactionEndMode::kConfirmed,
                                           TransactionEndMode::kBackground),
                         [](const auto& info) {
                           return info.param == TransactionEndMode::kConfirmed ? "Confirmed"
                                                                               : "Background";
                         });

TEST_F(FastPath, AHalfAnswersEachEndItCarries) {
  AdminClient admin(broker_->endpoint());
  auto half = [&](const std::string& tx_id, const std::string& body,
                  std::vector<std::pair<std::string, bool>> ends) {
    return admin.Call([&](wire::Envelope::Builder e) {
      auto h = e.initSendHalf();
      h.setTransactionId(tx_id);
      h.setProducerGroup("orders");
      wire::MessageToWire({.topic = "t", .body = body, .id = NewUuidV7()}, NowMs(),
                          h.initMessages(1)[0]);
      auto list = h.initEnds(static_cast<unsigned>(ends.size()));
      for (unsigned i = 0; i < ends.size(); ++i) {
        list[i].setTransactionId(ends[i].first);
        list[i].setOutcome(ends[i].second ? wire::TxOutcome::COMMIT : wire::TxOutcome::ROLLBACK);
      }
    });
  };
  const std::string a = NewUuidV7(), b = NewUuidV7(), c = NewUuidV7();
  ASSERT_TRUE(half(a, "a", {}).ok());
  ASSERT_TRUE(half(b, "b", {{a, true}}).ok());
  // c carries: b's commit, a's rollback (a is committed: CONFLICT), an
  // unknown transaction (NOT_FOUND), and a's commit again (already final).
  const std::string nobody = NewUuidV7();
  auto r = half(c, "c", {{b, true}, {a, false}, {nobody, true}, {a, true}});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  auto ok = r->envelope().getSendHalfOk();
  EXPECT_EQ(ok.getState(), wire::TxState::PREPARED);
  auto ends = ok.getEnds();
  ASSERT_EQ(ends.size(), 4u);
  EXPECT_EQ(wire::ToString(ends[0].getTransactionId()), b);
  EXPECT_EQ(ends[0].getError().getCode(), wire::ErrorCode::OK);
  EXPECT_EQ(ends[0].getState(), wire::TxState::COMMITTED);
  EXPECT_EQ(ends[1].getError().getCode(), wire::ErrorCode::CONFLICT);
  EXPECT_EQ(ends[2].getError().getCode(), wire::ErrorCode::NOT_FOUND);
  EXPECT_EQ(ends[3].getError().getCode(), wire::ErrorCode::OK);
  EXPECT_TRUE(ends[3].getAlreadyFinal());
  EXPECT_EQ(admin.Show(c)->state, wire::TxState::PREPARED);

  // Too many ends: refused, naming the rule.
  std::vector<std::pair<std::string, bool>> many(wire::kMaxEndsPerHalf + 1, {c, true});
  auto refused = half(NewUuidV7(), "d", many);
  EXPECT_EQ(refused.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(refused.status().message().find("at most 64 ends"), std::string::npos)
      << refused.status().message();
  EXPECT_EQ(admin.Show(c)->state, wire::TxState::PREPARED) << "nothing of a refused half applies";
}

}  // namespace
}  // namespace txmq
