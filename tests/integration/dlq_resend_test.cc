// Dead letters beyond the happy path: a resent message that fails again, a
// broker restart between the resend and the redelivery, and paging through
// a dead-letter queue longer than one page.
#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "tests/testutil/admin_client.h"
#include "tests/testutil/testutil.h"
#include "txmq/consumer.h"
#include "txmq/producer.h"

namespace txmq {
namespace {

using namespace std::chrono_literals;
using testing::AdminClient;
using testing::WaitFor;

struct Letter {
  std::string id;
  uint64_t offset;
  std::string origin_topic;
  uint32_t deliveries;
};

struct Page {
  std::vector<Letter> letters;
  bool more = false;
  uint64_t total = 0;
};

class DlqResend : public ::testing::Test {
 protected:
  void SetUp() override {
    options_ = testing::TestBrokerOptions(dir_.Sub("data"));
    StartBroker();
  }
  void StartBroker() {
    broker_ = testing::StartBroker(options_);
    ASSERT_NE(broker_, nullptr);
    options_.listen = broker_->endpoint();
    admin_ = std::make_unique<AdminClient>(broker_->endpoint());
  }

  Page List(std::optional<uint64_t> after = std::nullopt, uint32_t limit = 0) {
    auto r = admin_->Call([&](wire::Envelope::Builder e) {
      auto l = e.initDlqList();
      l.setGroup("billing");
      l.setLimit(limit);
      if (after) {
        l.setHasAfter(true);
        l.setAfterOffset(*after);
      }
    });
    Page page;
    // NOT_FOUND until the consumer registered its group.
    if (!r.ok() && r.status().code() == StatusCode::kNotFound) return page;
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    if (!r.ok()) return page;
    auto ok = r->envelope().getDlqListOk();
    for (auto m : ok.getMessages()) {
      page.letters.push_back({wire::ToString(m.getId()), m.getOffset(),
                              wire::ToString(m.getOriginTopic()), m.getDeliveries()});
    }
    page.more = ok.getMore();
    page.total = ok.getTotal();
    return page;
  }

  Result<std::vector<std::string>> Resend(const std::vector<std::string>& ids) {
    auto r = admin_->Call([&](wire::Envelope::Builder e) {
      auto req = e.initDlqResend();
      req.setGroup("billing");
      auto list = req.initMessageIds(static_cast<unsigned>(ids.size()));
      for (unsigned i = 0; i < ids.size(); ++i) list.set(i, ids[i]);
      req.setOperator("test");
    });
    if (!r.ok()) return r.status();
    std::vector<std::string> resent;
    for (auto id : r->envelope().getDlqResendOk().getResent()) resent.push_back(wire::ToString(id));
    return resent;
  }

  // Sends `n` messages to "orders" that group "billing" fails until they
  // are all dead letters (one redelivery allowed); their ids.
  std::vector<std::string> DeadLetters(int n) {
    Producer p({.broker = broker_->endpoint()});
    EXPECT_TRUE(p.Start().ok());
    std::vector<std::string> ids;
    for (int i = 0; i < n; ++i) {
      auto r = p.Send({.topic = "orders", .body = "charge " + std::to_string(i)});
      EXPECT_TRUE(r.ok()) << r.status().ToString();
      if (r.ok()) ids.push_back(r->message_id);
    }
    auto failing = FailingConsumer();
    EXPECT_TRUE(WaitFor([&] { return List(std::nullopt, 1000).total == ids.size(); }, 20s));
    failing->Shutdown();
    return ids;
  }

  std::unique_ptr<Consumer> FailingConsumer() {
    auto c = std::make_unique<Consumer>(ConsumerOptions{.broker = broker_->endpoint(),
                                                        .group = "billing",
                                                        .long_poll = 200ms,
                                                        .max_reconsume_times = 1});
    EXPECT_TRUE(c->Subscribe("orders", [](const Received&) {
                   return ConsumeResult::RetryLater(10ms);
                 }).ok());
    EXPECT_TRUE(c->Start().ok());
    return c;
  }

  testing::TempDir dir_;
  BrokerOptions options_;
  std::unique_ptr<Broker> broker_;
  std::unique_ptr<AdminClient> admin_;
};

TEST_F(DlqResend, AResentMessageThatFailsAgainIsDeadLetteredAgainOnceWithItsOrigin) {
  const std::string id = DeadLetters(1).at(0);
  Page before = List();
  ASSERT_EQ(before.letters.size(), 1u);
  EXPECT_EQ(before.letters[0].origin_topic, "orders");

  auto resent = Resend({id});
  ASSERT_TRUE(resent.ok()) << resent.status().ToString();
  ASSERT_EQ(*resent, std::vector<std::string>{id});
  EXPECT_EQ(List().total, 0u) << "a resent message leaves the dead-letter queue";

  // The handler is still broken: the resent copy fails its redeliveries
  // and is a dead letter again - one, naming the original topic.
  {
    auto failing = FailingConsumer();
    ASSERT_TRUE(WaitFor([&] { return List().total == 1; }, 20s));
    failing->Shutdown();
  }
  Page again = List();
  ASSERT_EQ(again.letters.size(), 1u);
  EXPECT_EQ(again.letters[0].id, id);
  EXPECT_EQ(again.letters[0].origin_topic, "orders") << "the origin is the user's topic";
  EXPECT_EQ(again.letters[0].deliveries, 2u) << "counted afresh since the resend";

  // Fixed now: one more resend delivers it, once.
  ASSERT_TRUE(Resend({id}).ok());
  std::mutex mu;
  std::map<std::string, int> got;
  Consumer fixed({.broker = broker_->endpoint(), .group = "billing", .long_poll = 200ms});
  ASSERT_TRUE(fixed
                  .Subscribe("orders",
                             [&](const Received& m) {
                               std::lock_guard<std::mutex> lock(mu);
                               got[m.id]++;
                               return ConsumeResult::Success();
                             })
                  .ok());
  ASSERT_TRUE(fixed.Start().ok());
  ASSERT_TRUE(WaitFor([&] {
    std::lock_guard<std::mutex> lock(mu);
    return got[id] == 1;
  }));
  std::this_thread::sleep_for(500ms);  // a second copy would be due by now
  fixed.Shutdown();
  EXPECT_EQ(got[id], 1);
  EXPECT_EQ(List().total, 0u);
}

TEST_F(DlqResend, ARestartBetweenTheResendAndTheRedeliveryLosesAndDuplicatesNothing) {
  const std::vector<std::string> ids = DeadLetters(3);
  auto resent = Resend({ids[0], ids[2]});
  ASSERT_TRUE(resent.ok()) << resent.status().ToString();
  ASSERT_EQ(resent->size(), 2u);

  admin_.reset();
  broker_.reset();  // before any consumer of the group came back
  StartBroker();

  Page left = List();
  ASSERT_EQ(left.letters.size(), 1u) << "the resend was forgotten in the restart";
  EXPECT_EQ(left.letters[0].id, ids[1]);
  std::mutex mu;
  std::map<std::string, int> got;
  Consumer fixed({.broker = broker_->endpoint(), .group = "billing", .long_poll = 200ms});
  ASSERT_TRUE(fixed
                  .Subscribe("orders",
                             [&](const Received& m) {
                               std::lock_guard<std::mutex> lock(mu);
                               got[m.id]++;
                               return ConsumeResult::Success();
                             })
                  .ok());
  ASSERT_TRUE(fixed.Start().ok());
  ASSERT_TRUE(WaitFor([&] {
    std::lock_guard<std::mutex> lock(mu);
    return got.size() == 2;
  })) << "a resent message was lost in the restart";
  std::this_thread::sleep_for(500ms);
  fixed.Shutdown();
  EXPECT_EQ(got[ids[0]], 1);
  EXPECT_EQ(got[ids[2]], 1);
  EXPECT_EQ(got.count(ids[1]), 0u) << "only what was resent comes back";
}

TEST_F(DlqResend, PagingVisitsEveryLetterOnceAlsoAfterSomeWereResent) {
  const std::vector<std::string> ids = DeadLetters(25);
  auto page_through = [&](uint64_t expected_total) {
    std::vector<std::string> seen;
    std::optional<uint64_t> after;
    for (int pages = 0; pages < 10; ++pages) {
      Page p = List(after, 10);
      EXPECT_EQ(p.total, expected_total);
      EXPECT_LE(p.letters.size(), 10u);
      for (const auto& l : p.letters) seen.push_back(l.id);
      if (!p.more) return seen;
      EXPECT_EQ(p.letters.size(), 10u) << "a page that says 'more' is full";
      after = p.letters.back().offset;
    }
    ADD_FAILURE() << "paging did not end";
    return seen;
  };
  auto all = page_through(25);
  EXPECT_EQ(all.size(), 25u);
  EXPECT_EQ(std::set<std::string>(all.begin(), all.end()),
            std::set<std::string>(ids.begin(), ids.end()));

  // Resend two of the first page and one of the second: the rest still
  // pages through, each once.
  ASSERT_TRUE(Resend({all[3], all[9], all[12]}).ok());
  auto rest = page_through(22);
  EXPECT_EQ(rest.size(), 22u);
  std::set<std::string> expected(all.begin(), all.end());
  for (const auto& gone : {all[3], all[9], all[12]}) expected.erase(gone);
  EXPECT_EQ(std::set<std::string>(rest.begin(), rest.end()), expected);
}

}  // namespace
}  // namespace txmq
