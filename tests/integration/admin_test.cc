// The broker's operator views and actions, through the wire API txmqctl
// uses: topics, messages by id and key, consumer groups, dead letters.
#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
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

class Admin : public ::testing::Test {
 protected:
  void SetUp() override {
    broker_ = testing::StartBroker(testing::TestBrokerOptions(dir_.Sub("data")));
    ASSERT_NE(broker_, nullptr);
    admin_ = std::make_unique<AdminClient>(broker_->endpoint());
    producer_ = std::make_unique<Producer>(ProducerOptions{.broker = broker_->endpoint()});
    ASSERT_TRUE(producer_->Start().ok());
  }

  testing::TempDir dir_;
  std::unique_ptr<Broker> broker_;
  std::unique_ptr<AdminClient> admin_;
  std::unique_ptr<Producer> producer_;
};

TEST_F(Admin, TopicListAndShowWithGroupLag) {
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(producer_->Send({.topic = "orders", .body = "x"}).ok());
  std::atomic<int> handled{0};
  Consumer c({.broker = broker_->endpoint(), .group = "billing", .long_poll = 300ms});
  ASSERT_TRUE(c.Subscribe("orders", [&](const Received&) {
                 ++handled;
                 return ConsumeResult::Success();
               }).ok());
  ASSERT_TRUE(c.Start().ok());
  ASSERT_TRUE(WaitFor([&] { return handled == 10; }));
  c.Shutdown();
  ASSERT_TRUE(producer_->Send({.topic = "orders", .body = "late"}).ok());

  auto list = admin_->Call([](wire::Envelope::Builder e) { e.setTopicList(); });
  ASSERT_TRUE(list.ok());
  auto topics = list->envelope().getTopicListOk().getTopics();
  ASSERT_EQ(topics.size(), 1u);
  EXPECT_EQ(topics[0].getMessages(), 11u);
  auto show = admin_->Call([](wire::Envelope::Builder e) { e.setTopicShow("orders"); });
  ASSERT_TRUE(show.ok());
  auto info = show->envelope().getTopicShowOk();
  ASSERT_EQ(info.getQueues().size(), 4u);
  ASSERT_EQ(info.getGroups().size(), 1u);
  EXPECT_EQ(wire::ToString(info.getGroups()[0].getGroup()), "billing");
  EXPECT_EQ(info.getGroups()[0].getLag(), 1u);
  auto missing = admin_->Call([](wire::Envelope::Builder e) { e.setTopicShow("nope"); });
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
}

TEST_F(Admin, MessageShowSaysWhereItIsInEachGroup) {
  auto sent = producer_->Send(
      {.topic = "orders", .key = "order-7", .body = "hello", .properties = {{"source", "web"}}});
  ASSERT_TRUE(sent.ok());
  // Group "done" consumes it; group "holding" keeps it leased.
  std::atomic<int> done{0};
  Consumer finished({.broker = broker_->endpoint(), .group = "done", .long_poll = 300ms});
  ASSERT_TRUE(finished
                  .Subscribe("orders",
                             [&](const Received&) {
                               ++done;
                               return ConsumeResult::Success();
                             })
                  .ok());
  ASSERT_TRUE(finished.Start().ok());
  std::atomic<bool> holding{false}, release{false};
  Consumer holder({.broker = broker_->endpoint(), .group = "holding", .long_poll = 300ms});
  ASSERT_TRUE(holder
                  .Subscribe("orders",
                             [&](const Received&) {
                               holding = true;
                               while (!release) std::this_thread::sleep_for(10ms);
                               return ConsumeResult::Success();
                             })
                  .ok());
  ASSERT_TRUE(holder.Start().ok());
  ASSERT_TRUE(WaitFor([&] { return done == 1 && holding; }));

  // The handler returning is not the broker seeing the ack: the consumer acks
  // asynchronously, so ask until the broker's view settles.
  std::map<std::string, std::string> states;
  auto show = [&] {
    return admin_->Call(
        [&](wire::Envelope::Builder e) { e.initShowMessage().setMessageId(sent->message_id); });
  };
  ASSERT_TRUE(WaitFor([&] {
    auto r = show();
    if (!r.ok()) return false;
    states.clear();
    for (auto d : r->envelope().getShowMessageOk().getDeliveries())
      states[wire::ToString(d.getGroup())] = wire::ToString(d.getState());
    return states["done"] == "consumed";
  })) << "group 'done' never showed the message as consumed, last state: "
      << states["done"];
  auto r = show();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  auto detail = r->envelope().getShowMessageOk();
  EXPECT_EQ(wire::ToString(detail.getMessage().getBody()), "hello");
  EXPECT_EQ(wire::ToString(detail.getLocation().getTopic()), "orders");
  EXPECT_EQ(detail.getLocation().getOffset(), *sent->offset);
  EXPECT_EQ(states["holding"], "in-flight");
  release = true;
  finished.Shutdown();
  holder.Shutdown();

  auto find = admin_->Call([](wire::Envelope::Builder e) {
    auto f = e.initFindMessages();
    f.setTopic("orders");
    f.setKey("order-7");
  });
  ASSERT_TRUE(find.ok());
  auto hits = find->envelope().getFindMessagesOk().getMessages();
  ASSERT_EQ(hits.size(), 1u);
  EXPECT_EQ(wire::ToString(hits[0].getId()), sent->message_id);

  auto unknown =
      admin_->Call([](wire::Envelope::Builder e) { e.initShowMessage().setMessageId("nope"); });
  EXPECT_EQ(unknown.status().code(), StatusCode::kNotFound);
}

TEST_F(Admin, DeadLettersCanBeListedShownAndResentToTheirGroupOnly) {
  auto sent = producer_->Send({.topic = "jobs", .body = "poison"});
  ASSERT_TRUE(sent.ok());
  std::atomic<bool> healed{false};
  std::mutex mu;
  std::vector<uint32_t> counts;
  std::atomic<int> other_group{0};
  Consumer other({.broker = broker_->endpoint(), .group = "other", .long_poll = 300ms});
  ASSERT_TRUE(other
                  .Subscribe("jobs",
                             [&](const Received&) {
                               ++other_group;
                               return ConsumeResult::Success();
                             })
                  .ok());
  ASSERT_TRUE(other.Start().ok());
  Consumer c({.broker = broker_->endpoint(),
              .group = "workers",
              .long_poll = 300ms,
              .max_reconsume_times = 1});
  ASSERT_TRUE(c.Subscribe("jobs", [&](const Received& m) {
                 std::lock_guard<std::mutex> lock(mu);
                 counts.push_back(m.delivery_count);
                 return healed ? ConsumeResult::Success() : ConsumeResult::RetryLater();
               }).ok());
  ASSERT_TRUE(c.Start().ok());

  auto dlq_list = [&] {
    auto r = admin_->Call([](wire::Envelope::Builder e) { e.initDlqList().setGroup("workers"); });
    std::vector<std::string> ids;
    // NOT_FOUND until the consumer registered its group.
    if (!r.ok() && r.status().code() == StatusCode::kNotFound) return ids;
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    if (!r.ok()) return ids;
    for (auto l : r->envelope().getDlqListOk().getMessages())
      ids.push_back(wire::ToString(l.getId()));
    return ids;
  };
  ASSERT_TRUE(WaitFor([&] { return dlq_list().size() == 1; }, 10s));
  ASSERT_TRUE(WaitFor([&] { return other_group == 1; }));
  auto shown = admin_->Call([&](wire::Envelope::Builder e) {
    auto s = e.initDlqShow();
    s.setGroup("workers");
    s.setMessageId(sent->message_id);
  });
  ASSERT_TRUE(shown.ok());
  auto letter = shown->envelope().getDlqShowOk().getLetter();
  EXPECT_EQ(wire::ToString(letter.getOriginTopic()), "jobs");
  EXPECT_EQ(letter.getDeliveries(), 2u);

  // Dry run: says what would happen, changes nothing.
  auto dry = admin_->Call([&](wire::Envelope::Builder e) {
    auto r = e.initDlqResend();
    r.setGroup("workers");
    r.setAll(true);
    r.setDryRun(true);
  });
  ASSERT_TRUE(dry.ok());
  EXPECT_EQ(dry->envelope().getDlqResendOk().getResent().size(), 1u);
  EXPECT_EQ(dlq_list().size(), 1u);

  healed = true;
  auto resend = admin_->Call([&](wire::Envelope::Builder e) {
    auto r = e.initDlqResend();
    r.setGroup("workers");
    auto ids = r.initMessageIds(2);
    ids.set(0, sent->message_id);
    ids.set(1, "not-there");
    r.setOperator("test");
  });
  ASSERT_TRUE(resend.ok()) << resend.status().ToString();
  EXPECT_EQ(resend->envelope().getDlqResendOk().getResent().size(), 1u);
  EXPECT_EQ(resend->envelope().getDlqResendOk().getMissing().size(), 1u);
  ASSERT_TRUE(WaitFor([&] {
    std::lock_guard<std::mutex> lock(mu);
    return counts.size() == 3;
  }));
  std::this_thread::sleep_for(300ms);
  c.Shutdown();
  other.Shutdown();
  EXPECT_EQ(counts.back(), 1u) << "a fresh delivery count";
  EXPECT_TRUE(dlq_list().empty());
  EXPECT_EQ(other_group, 1) << "the other group is not sent it again";

  auto group = admin_->Call([](wire::Envelope::Builder e) { e.setGroupShow("workers"); });
  ASSERT_TRUE(group.ok());
  EXPECT_EQ(group->envelope().getGroupShowOk().getRetrying(), 0u);
  EXPECT_EQ(group->envelope().getGroupShowOk().getDeadLetters(), 0u);
}

TEST_F(Admin, GroupShowListsMembersCursorsAndRetries) {
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(producer_->Send({.topic = "t", .body = "x"}).ok());
  Consumer c({.broker = broker_->endpoint(), .group = "g", .long_poll = 300ms});
  ASSERT_TRUE(
      c.Subscribe("t", [](const Received&) { return ConsumeResult::RetryLater(10s); }).ok());
  ASSERT_TRUE(c.Start().ok());
  auto show = [&] { return admin_->Call([](wire::Envelope::Builder e) { e.setGroupShow("g"); }); };
  ASSERT_TRUE(WaitFor([&] {
    auto r = show();
    return r.ok() && r->envelope().getGroupShowOk().getRetrying() == 3;
  }));
  auto r = show();
  auto g = r->envelope().getGroupShowOk();
  ASSERT_EQ(g.getMembers().size(), 1u);
  EXPECT_EQ(g.getRetries().size(), 3u);
  EXPECT_EQ(g.getRetries()[0].getDeliveryCount(), 1u);
  EXPECT_FALSE(wire::ToString(g.getRetries()[0].getMessageId()).empty());
  EXPECT_EQ(g.getCursors().size(), 4u);
  auto list = admin_->Call([](wire::Envelope::Builder e) { e.setGroupList(); });
  ASSERT_TRUE(list.ok());
  EXPECT_EQ(list->envelope().getGroupListOk().getGroups().size(), 1u);
  c.Shutdown();
}

TEST_F(Admin, IdleClientsHeartbeatFastEnoughForTheBrokersClientTimeout) {
  // A broker that forgets clients after 600 ms: the clients' heartbeats
  // (1 s by default, which would lose the client here) follow the broker's
  // timeout from its hello reply (150 ms).
  broker_->Stop();
  auto options = testing::TestBrokerOptions(dir_.Sub("short-timeout"));
  options.client_timeout = 600ms;
  broker_ = testing::StartBroker(options);
  ASSERT_NE(broker_, nullptr);
  Producer idle({.broker = broker_->endpoint(), .group = "idle"});
  ASSERT_TRUE(idle.Start().ok());
  AdminClient admin(broker_->endpoint());
  auto producers = [&] {
    auto r = admin.Call([](wire::Envelope::Builder e) { e.setStatus(); });
    return r.ok() ? r->envelope().getStatusOk().getProducers() : 0u;
  };
  ASSERT_TRUE(WaitFor([&] { return producers() == 1; }));
  for (int i = 0; i < 20; ++i) {  // 2 s of silence from the producer's side
    std::this_thread::sleep_for(100ms);
    EXPECT_EQ(producers(), 1u) << "the broker forgot an idle, live producer after " << i * 100
                               << " ms";
  }
}

}  // namespace
}  // namespace txmq
