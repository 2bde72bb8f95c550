// The broker's limits (broker/src/limits.h) on the fake clock: each one
// reached and answered with its error at once, naming the limit, its value
// and its flag, while a client within its own budget keeps being served.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "protocol/src/message_codec.h"
#include "tests/unit/broker_harness.h"
#include "txmq/names.h"

namespace txmq::broker {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;

BrokerOptions LimitOptions() {
  BrokerOptions o;
  o.default_queues = 1;
  o.max_message_bytes = 1u << 20;
  o.segment_bytes = 8u << 20;
  o.retry_backoff = {1s};
  o.max_reconsume_times = 1;
  o.cleanup_interval = 1s;
  return o;
}

// The error an envelope carries, as a Status (OK if it is none).
Status StatusOf(const std::optional<wire::Frame>& reply) {
  if (!reply) return Status::Internal("no reply");
  return wire::StatusOf(reply->envelope());
}

// Checks a refusal: its code, and that it names the flag and the value.
void ExpectRefusal(const Status& s, StatusCode code, const std::string& flag, uint64_t value) {
  EXPECT_EQ(s.code(), code) << s.ToString();
  EXPECT_THAT(s.message(), HasSubstr("--" + flag)) << s.ToString();
  EXPECT_THAT(s.message(), HasSubstr(std::to_string(value))) << s.ToString();
}

void FillSend(wire::Envelope::Builder e, const std::string& topic, const std::string& id,
              const std::string& body = "x") {
  auto m = e.initSend().initMessage();
  m.setId(id);
  m.setTopic(topic);
  m.setBody(wire::AsData(body));
}

void FillPull(wire::Envelope::Builder e, const std::string& group, const std::string& topic,
              uint32_t wait_ms, uint32_t max_messages = 32) {
  auto p = e.initPull();
  p.setGroup(group);
  p.initTopics(1).set(0, topic);
  p.setWaitMs(wait_ms);
  p.setMaxMessages(max_messages);
  p.setVisibilityTimeoutMs(60'000);
}

Status SendTo(BrokerHarness& h, const std::string& client, const std::string& topic,
              const std::string& id) {
  return StatusOf(h.Call(client, [&](wire::Envelope::Builder e) { FillSend(e, topic, id); }));
}

// ---- parked pulls ----

class ParkedLimits : public ::testing::Test {
 protected:
  static BrokerOptions Options() {
    BrokerOptions o = LimitOptions();
    o.max_parked_pulls_per_client = 3;
    o.max_parked_pulls = 5;
    o.max_long_poll = 60s;
    o.client_timeout = 10s;
    return o;
  }
  BrokerHarness h_{Options()};

  std::optional<wire::Frame> Park(const std::string& client, const std::string& group) {
    return h_.Call(client, [&](wire::Envelope::Builder e) { FillPull(e, group, "t", 60'000); });
  }
};

TEST_F(ParkedLimits, TheNextPollPastTheClientsLimitIsRefusedAtOnce) {
  for (int i = 0; i < 3; ++i) EXPECT_FALSE(Park("greedy", "g").has_value()) << "parked";
  ExpectRefusal(StatusOf(Park("greedy", "g")), StatusCode::kOverloaded,
                "max-parked-pulls-per-client", 3);
  EXPECT_EQ(h_.core().limits().parked(), 3u);

  // Another client parks, and is served when a message comes.
  EXPECT_FALSE(Park("polite", "other").has_value());
  ASSERT_TRUE(SendTo(h_, "producer", "t", "m1").ok());
  auto served = h_.TakePulled("polite");
  ASSERT_EQ(served.size(), 1u);
  ASSERT_EQ(served[0].size(), 1u);
  EXPECT_EQ(served[0][0].id, "m1");

  // The greedy client's waits end at their deadline; then it may park again.
  h_.Advance(60s);
  EXPECT_EQ(h_.core().limits().parked(), 0u);
  EXPECT_FALSE(Park("greedy", "g").has_value());
}

TEST_F(ParkedLimits, TheBrokerWideLimitHoldsAcrossClients) {
  for (const char* c : {"a", "b", "c", "d", "e"}) EXPECT_FALSE(Park(c, "g").has_value()) << c;
  ExpectRefusal(StatusOf(Park("f", "g")), StatusCode::kOverloaded, "max-parked-pulls", 5);
  // Sends are not pulls: still served.
  EXPECT_TRUE(SendTo(h_, "producer", "t", "m1").ok());
  // The message answered one parked pull, which makes room for one more.
  EXPECT_EQ(h_.core().limits().parked(), 4u);
  EXPECT_FALSE(Park("f", "g").has_value());
  EXPECT_EQ(h_.core().limits().refused(Limits::kParked), 1u);
}

TEST_F(ParkedLimits, AClientThatVanishesFreesItsPollsAndItsInFlightCount) {
  h_.Hello("gone", wire::Role::CONSUMER, "g");
  for (int i = 0; i < 3; ++i) EXPECT_FALSE(Park("gone", "g").has_value());
  EXPECT_EQ(h_.core().limits().InFlight("gone"), 3u) << "a parked pull is in flight";
  h_.Advance(h_.options().client_timeout + 1s);  // silent: forgotten
  EXPECT_EQ(h_.core().limits().parked(), 0u);
  EXPECT_EQ(h_.core().limits().InFlight("gone"), 0u);
}

TEST_F(ParkedLimits, AllConnectionsOfAPrincipalShareItsBudgetAndOthersKeepTheirs) {
  h_.SetPrincipal("billing-1", "billing");
  h_.SetPrincipal("billing-2", "billing");
  h_.SetPrincipal("shop-1", "shop");
  EXPECT_FALSE(Park("billing-1", "g").has_value());
  EXPECT_FALSE(Park("billing-1", "g").has_value());
  EXPECT_FALSE(Park("billing-2", "g").has_value());
  // A fresh connection of the same key does not bring a fresh budget.
  Status refused = StatusOf(Park("billing-2", "g"));
  ExpectRefusal(refused, StatusCode::kOverloaded, "max-parked-pulls-per-client", 3);
  EXPECT_THAT(refused.message(), HasSubstr("principal 'billing'"));
  EXPECT_EQ(h_.core().limits().InFlight("billing-1"), 3u) << "the principal's count";
  // Another principal parks as before.
  EXPECT_FALSE(Park("shop-1", "g").has_value());
  EXPECT_EQ(h_.core().limits().parked(), 4u);
}

TEST_F(ParkedLimits, AConnectionThatGoesGivesBackItsShareOnly) {
  h_.SetPrincipal("billing-1", "billing");
  h_.SetPrincipal("billing-2", "billing");
  h_.Hello("billing-1", wire::Role::CONSUMER, "g");
  EXPECT_FALSE(Park("billing-1", "g").has_value());
  EXPECT_FALSE(Park("billing-1", "g").has_value());
  EXPECT_FALSE(Park("billing-2", "g").has_value());  // no hello: never expires as a client
  h_.Advance(h_.options().client_timeout + 1s);      // billing-1 is silent: forgotten
  EXPECT_EQ(h_.core().limits().parked(), 1u);
  EXPECT_EQ(h_.core().limits().InFlight("billing-2"), 1u) << "billing-2's pull is still counted";
  EXPECT_FALSE(Park("billing-2", "g").has_value());
  EXPECT_FALSE(Park("billing-2", "g").has_value());
  ExpectRefusal(StatusOf(Park("billing-2", "g")), StatusCode::kOverloaded,
                "max-parked-pulls-per-client", 3);
}

TEST(ConnectionAccounts, ConnectionsThatHoldNothingAreForgottenAfterAMinute) {
  BrokerHarness h(LimitOptions());
  ASSERT_TRUE(SendTo(h, "producer", "t", "first").ok());
  for (int i = 0; i < 600; ++i) {  // more than one sweep looks at
    h.SetPrincipal("c" + std::to_string(i), i % 2 ? "odd" : "even");
    ASSERT_TRUE(SendTo(h, "c" + std::to_string(i), "t", "m" + std::to_string(i)).ok());
  }
  EXPECT_GE(h.core().limits().connections_known(), 600u);
  h.Advance(30s);
  EXPECT_GE(h.core().limits().connections_known(), 600u) << "not idle long enough yet";
  for (int i = 0; i < 10 && h.core().limits().connections_known() > 0; ++i) h.Advance(61s);
  EXPECT_EQ(h.core().limits().connections_known(), 0u);
}

// ---- requests in flight ----

TEST(InFlightLimit, RequestsWaitingForTheirWriteAreCappedPerClient) {
  BrokerOptions o = LimitOptions();
  o.max_in_flight_per_client = 4;
  BrokerHarness h(o);
  ASSERT_TRUE(SendTo(h, "producer", "t", "first").ok());  // the topic exists
  // Four sends wait for their round (nothing is written until Commit).
  for (int i = 0; i < 4; ++i) {
    h.Submit("pipeliner",
             [&](wire::Envelope::Builder e) { FillSend(e, "t", "p" + std::to_string(i)); });
  }
  EXPECT_EQ(h.core().limits().InFlight("pipeliner"), 4u);
  const uint64_t fifth =
      h.Submit("pipeliner", [&](wire::Envelope::Builder e) { FillSend(e, "t", "p4"); });
  ExpectRefusal(StatusOf(h.link().TakeReply("pipeliner", fifth)), StatusCode::kOverloaded,
                "max-in-flight-per-client", 4);
  // Another client's send joins the same round and succeeds with it.
  const uint64_t other =
      h.Submit("other", [&](wire::Envelope::Builder e) { FillSend(e, "t", "o"); });
  h.Commit();
  EXPECT_TRUE(StatusOf(h.link().TakeReply("other", other)).ok());
  for (const wire::Frame& f : h.link().Take("pipeliner")) {
    EXPECT_TRUE(wire::StatusOf(f.envelope()).ok()) << "the four accepted sends are stored";
  }
  EXPECT_EQ(h.core().limits().InFlight("pipeliner"), 0u);
  EXPECT_TRUE(SendTo(h, "pipeliner", "t", "p5").ok()) << "answered: room again";
}

// ---- open transactions ----

class TransactionLimits : public ::testing::Test {
 protected:
  static BrokerOptions Options() {
    BrokerOptions o = LimitOptions();
    o.max_open_transactions_per_group = 3;
    o.max_open_transactions = 5;
    return o;
  }
  BrokerHarness h_{Options()};

  Status Half(const std::string& group, const std::string& tx) {
    return StatusOf(h_.Call("p-" + group, [&](wire::Envelope::Builder e) {
      auto r = e.initSendHalf();
      r.setTransactionId(tx);
      r.setProducerGroup(group);
      auto m = r.initMessages(1)[0];
      m.setId("m-" + tx);
      m.setTopic("orders");
      m.setBody(wire::AsData("x"));
    }));
  }
};

TEST_F(TransactionLimits, AHalfBeyondTheGroupsLimitIsRefusedAndEndsStillWork) {
  for (const char* tx : {"t1", "t2", "t3"}) ASSERT_TRUE(Half("shop", tx).ok()) << tx;
  ExpectRefusal(Half("shop", "t4"), StatusCode::kResourceExhausted,
                "max-open-transactions-per-group", 3);
  EXPECT_TRUE(Half("shop", "t2").ok()) << "a resend of an open one is answered as before";
  EXPECT_TRUE(Half("billing", "b1").ok()) << "another group has its own budget";

  // Ends are always taken, and free room.
  EXPECT_TRUE(h_.End("p-shop", "t1", wire::TxOutcome::COMMIT).first.ok());
  EXPECT_TRUE(h_.End("p-shop", "t2", wire::TxOutcome::ROLLBACK).first.ok());
  EXPECT_TRUE(Half("shop", "t4").ok());
  EXPECT_TRUE(SendTo(h_, "producer", "orders", "plain").ok()) << "plain sends are not limited";
}

TEST_F(TransactionLimits, TheBrokerWideLimitHoldsAcrossGroups) {
  for (const char* tx : {"a1", "a2", "a3"}) ASSERT_TRUE(Half("a", tx).ok());
  for (const char* tx : {"b1", "b2"}) ASSERT_TRUE(Half("b", tx).ok());
  ExpectRefusal(Half("c", "c1"), StatusCode::kResourceExhausted, "max-open-transactions", 5);
  EXPECT_EQ(h_.core().limits().refused(Limits::kOpenTx), 1u);
}

// ---- topics and groups ----

// Halves name topics their commits create. Each new topic counts against
// the limits when its half is admitted: one half naming five new topics,
// or two halves one each, must not take the count past --max-topics (nor
// a principal past its share), since the commit cannot be refused.
TEST(TopicLimits, TopicsThatOpenHalvesWillCreateCountAgainstTheLimits) {
  BrokerOptions o = LimitOptions();
  o.max_topics = 10;
  BrokerHarness h(o);
  for (int i = 0; i < 8; ++i) {
    ASSERT_TRUE(SendTo(h, "flood", "t" + std::to_string(i), "m" + std::to_string(i)).ok());
  }
  auto half = [&](const std::string& tx, const std::vector<std::string>& topics) {
    return StatusOf(h.Call("p", [&](wire::Envelope::Builder e) {
      auto r = e.initSendHalf();
      r.setTransactionId(tx);
      r.setProducerGroup("shop");
      auto ms = r.initMessages(static_cast<unsigned>(topics.size()));
      for (unsigned i = 0; i < topics.size(); ++i) {
        ms[i].setId(tx + "-" + std::to_string(i));
        ms[i].setTopic(topics[i]);
        ms[i].setBody(wire::AsData("x"));
      }
    }));
  };
  ExpectRefusal(half("tx-five", {"new0", "new1", "new2", "new3", "new4"}),
                StatusCode::kResourceExhausted, "max-topics", 10);
  ASSERT_TRUE(half("tx-a", {"new-a"}).ok());
  ASSERT_TRUE(half("tx-b", {"new-b", "new-a"}).ok()) << "new-a counts once";
  ExpectRefusal(half("tx-c", {"new-c"}), StatusCode::kResourceExhausted, "max-topics", 10);
  ASSERT_EQ(h.End("p", "tx-a", wire::TxOutcome::COMMIT).second, wire::TxState::COMMITTED);
  ASSERT_EQ(h.End("p", "tx-b", wire::TxOutcome::COMMIT).second, wire::TxState::COMMITTED);
  EXPECT_EQ(h.topics().all().size(), 10u);
}

TEST(TopicLimits, TopicsThatOpenHalvesWillCreateGiveTheirPlaceBackWhenRolledBack) {
  BrokerOptions o = LimitOptions();
  o.max_topics = 3;
  BrokerHarness h(o);
  ASSERT_TRUE(SendTo(h, "flood", "t0", "m0").ok());
  ASSERT_TRUE(SendTo(h, "flood", "t1", "m1").ok());
  ASSERT_EQ(h.SendHalf("p", "shop", "tx-1", {"x"}, "brand-new"), wire::TxState::PREPARED);
  ExpectRefusal(SendTo(h, "flood", "t2", "m2"), StatusCode::kResourceExhausted, "max-topics", 3);
  ASSERT_EQ(h.End("p", "tx-1", wire::TxOutcome::ROLLBACK).second, wire::TxState::ROLLED_BACK);
  EXPECT_TRUE(SendTo(h, "flood", "t2", "m2").ok());
}

TEST(TopicLimits, ANewTopicPastTheCountIsRefusedAndExistingOnesStillWork) {
  BrokerOptions o = LimitOptions();
  o.max_topics = 10;
  BrokerHarness h(o);
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(SendTo(h, "flood", "t" + std::to_string(i), "m" + std::to_string(i)).ok());
  }
  ExpectRefusal(SendTo(h, "flood", "t10", "m10"), StatusCode::kResourceExhausted, "max-topics", 10);
  EXPECT_EQ(h.topics().all().size(), 10u);
  EXPECT_TRUE(SendTo(h, "polite", "t3", "again").ok());

  // A transaction naming a new topic is refused when it is sent, not when
  // it commits.
  auto half = StatusOf(h.Call("p", [&](wire::Envelope::Builder e) {
    auto r = e.initSendHalf();
    r.setTransactionId("tx");
    r.setProducerGroup("shop");
    auto m = r.initMessages(1)[0];
    m.setId("in-tx");
    m.setTopic("brand-new");
    m.setBody(wire::AsData("x"));
  }));
  ExpectRefusal(half, StatusCode::kResourceExhausted, "max-topics", 10);

  // The broker's own topics are created past it: a failed message is never
  // lost for want of its dead-letter topic.
  auto got = h.Pull("c", "workers", "t3", 60'000);
  ASSERT_TRUE(got && !got->empty());
  for (const Pulled& p : *got) {
    EXPECT_EQ(h.Nack("c", "workers", p.receipt, 0, /*max_reconsume=*/1).requeued, 1u);
  }
  h.Advance(2s);
  got = h.Pull("c", "workers", "t3", 60'000);
  ASSERT_TRUE(got && !got->empty());
  for (const Pulled& p : *got) EXPECT_EQ(h.Nack("c", "workers", p.receipt, 0, 1).dead, 1u);
  EXPECT_NE(h.topics().Find(DeadLetterTopic("workers")), nullptr);
}

TEST(TopicLimits, CreationIsRateLimitedWithABurstOfTenSeconds) {
  BrokerOptions o = LimitOptions();
  o.topic_creates_per_second = 2;  // a bucket of 20
  BrokerHarness h(o);
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(SendTo(h, "c", "t" + std::to_string(i), "m" + std::to_string(i)).ok()) << i;
  }
  ExpectRefusal(SendTo(h, "c", "t20", "m20"), StatusCode::kOverloaded, "topic-creates-per-second",
                2);
  EXPECT_TRUE(SendTo(h, "c", "t0", "again").ok()) << "existing topics are not created";
  h.Advance(499ms);
  EXPECT_EQ(SendTo(h, "c", "t20", "m20").code(), StatusCode::kOverloaded);
  h.Advance(1ms);  // half a second: one token
  EXPECT_TRUE(SendTo(h, "c", "t20", "m20").ok());
}

TEST(TopicLimits, HalvesNamingATopicTheirCommitCreatesTakeNoCreationToken) {
  // The rate counts topics created: halves naming one that does not exist
  // yet create nothing (issue 10 flood test: a thousand halves to one new
  // topic used up the burst and every later half was refused).
  BrokerOptions o = LimitOptions();
  o.topic_creates_per_second = 1;  // a bucket of 10
  BrokerHarness h(o);
  for (int i = 0; i < 30; ++i) {
    const std::string tx = "tx" + std::to_string(i);
    auto half = StatusOf(h.Call("p", [&](wire::Envelope::Builder e) {
      auto r = e.initSendHalf();
      r.setTransactionId(tx);
      r.setProducerGroup("shop");
      auto m = r.initMessages(1)[0];
      m.setId("m-" + tx);
      m.setTopic("payments");
      m.setBody(wire::AsData("x"));
    }));
    ASSERT_TRUE(half.ok()) << i << ": " << half.ToString();
  }
  EXPECT_EQ(h.core().limits().refused(Limits::kTopicRate), 0u);
  EXPECT_TRUE(h.End("p", "tx0", wire::TxOutcome::COMMIT).first.ok());
  EXPECT_NE(h.topics().Find("payments"), nullptr) << "the commit created it";
}

TEST(GroupLimits, ANewGroupPastTheCountOrTheRateIsRefused) {
  BrokerOptions o = LimitOptions();
  o.max_groups = 12;
  o.group_creates_per_second = 1;  // a bucket of 10
  BrokerHarness h(o);
  ASSERT_TRUE(SendTo(h, "producer", "t", "m").ok());
  auto pull = [&](const std::string& group) {
    return StatusOf(h.Call("c", [&](wire::Envelope::Builder e) { FillPull(e, group, "t", 0); }));
  };
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(pull("g" + std::to_string(i)).ok()) << i;
  ExpectRefusal(pull("g10"), StatusCode::kOverloaded, "group-creates-per-second", 1);
  EXPECT_TRUE(pull("g3").ok()) << "an existing group is served";
  h.Advance(2s);
  EXPECT_TRUE(pull("g10").ok());
  EXPECT_TRUE(pull("g11").ok());
  h.Advance(10s);
  ExpectRefusal(pull("g12"), StatusCode::kResourceExhausted, "max-groups", 12);
  EXPECT_EQ(h.groups().all().size(), 12u);
}

// Per principal (CURVE): each principal that is not an admin creates from
// its own share as well as the broker's.
TEST(CreationLimits, APrincipalPastItsTopicShareIsRefusedWhileOthersCreate) {
  BrokerOptions o = LimitOptions();
  o.max_topics_per_principal = 3;
  BrokerHarness h(o);
  h.SetPrincipal("flood-1", "flood");
  h.SetPrincipal("flood-2", "flood");
  h.SetPrincipal("shop-1", "shop");
  h.SetPrincipal("ops-1", "ops", /*admin=*/true);
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(
        SendTo(h, i % 2 ? "flood-1" : "flood-2", "f" + std::to_string(i), "m" + std::to_string(i))
            .ok());
  }
  Status refused = SendTo(h, "flood-2", "f3", "m3");
  ExpectRefusal(refused, StatusCode::kResourceExhausted, "max-topics-per-principal", 3);
  EXPECT_THAT(refused.message(), HasSubstr("principal 'flood' created 3 topics"));
  EXPECT_EQ(h.core().limits().refused(Limits::kTopicsPerPrincipal), 1u);
  EXPECT_TRUE(SendTo(h, "flood-1", "f0", "again").ok()) << "its topics still take messages";
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(SendTo(h, "shop-1", "s" + std::to_string(i), "s" + std::to_string(i)).ok());
  }
  for (int i = 0; i < 5; ++i) {
    EXPECT_TRUE(SendTo(h, "ops-1", "o" + std::to_string(i), "o" + std::to_string(i)).ok())
        << "an admin has only the broker's limits";
  }
  for (int i = 0; i < 5; ++i) {
    EXPECT_TRUE(SendTo(h, "plain", "p" + std::to_string(i), "p" + std::to_string(i)).ok())
        << "without a principal, only the broker's limits";
  }
  EXPECT_EQ(h.topics().created_by().Of("flood"), 3u);
  EXPECT_EQ(h.topics().created_by().Of("ops"), 0u) << "an admin's topics are nobody's share";
  EXPECT_EQ(h.topics().Find("f1")->creator, "flood");

  // A topic that goes stops counting.
  h.topics().Remove("f1");
  EXPECT_TRUE(SendTo(h, "flood-1", "f3", "m3").ok());
  EXPECT_EQ(SendTo(h, "flood-1", "f4", "m4").code(), StatusCode::kResourceExhausted);
}

TEST(CreationLimits, APrincipalsRateRefusalTakesNothingFromTheBrokersRate) {
  BrokerOptions o = LimitOptions();
  o.topic_creates_per_second_per_principal = 1;  // a bucket of 10
  o.topic_creates_per_second = 2;                // a bucket of 20
  BrokerHarness h(o);
  h.SetPrincipal("flood-1", "flood");
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(SendTo(h, "flood-1", "f" + std::to_string(i), "m" + std::to_string(i)).ok()) << i;
  }
  for (int i = 10; i < 30; ++i) {
    ExpectRefusal(SendTo(h, "flood-1", "f" + std::to_string(i), "m" + std::to_string(i)),
                  StatusCode::kOverloaded, "topic-creates-per-second-per-principal", 1);
  }
  // The broker's bucket lost only the ten it admitted (a client without a
  // principal draws on it alone).
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(SendTo(h, "plain", "s" + std::to_string(i), "s" + std::to_string(i)).ok()) << i;
  }
  ExpectRefusal(SendTo(h, "plain", "s10", "s10"), StatusCode::kOverloaded,
                "topic-creates-per-second", 2);
  h.Advance(1s);  // one token for flood, two for the broker
  EXPECT_TRUE(SendTo(h, "flood-1", "f10", "m10").ok());
  EXPECT_EQ(SendTo(h, "flood-1", "f11", "m11").code(), StatusCode::kOverloaded);
  EXPECT_TRUE(SendTo(h, "plain", "s10", "s10").ok());
}

TEST(CreationLimits, ATopicATransactionCreatesCountsAgainstTheSendersShare) {
  BrokerOptions o = LimitOptions();
  o.max_topics_per_principal = 2;
  BrokerHarness h(o);
  h.SetPrincipal("p", "payments");
  ASSERT_TRUE(SendTo(h, "p", "first", "m1").ok());
  auto half = [&](const std::string& tx, const std::string& topic) {
    return StatusOf(h.Call("p", [&](wire::Envelope::Builder e) {
      auto r = e.initSendHalf();
      r.setTransactionId(tx);
      r.setProducerGroup("shop");
      auto m = r.initMessages(1)[0];
      m.setId("m-" + tx);
      m.setTopic(topic);
      m.setBody(wire::AsData("x"));
    }));
  };
  ASSERT_TRUE(half("tx1", "second").ok());
  ASSERT_TRUE(half("tx2", "second").ok()) << "halves create nothing";
  EXPECT_EQ(h.GetTx("tx1")->principal, "payments");
  EXPECT_TRUE(h.End("p", "tx1", wire::TxOutcome::COMMIT).first.ok());
  ASSERT_NE(h.topics().Find("second"), nullptr);
  EXPECT_EQ(h.topics().Find("second")->creator, "payments");
  ExpectRefusal(half("tx3", "third"), StatusCode::kResourceExhausted, "max-topics-per-principal",
                2);
}

TEST(CreationLimits, APrincipalPastItsGroupShareOrRateIsRefused) {
  BrokerOptions o = LimitOptions();
  o.max_groups_per_principal = 12;
  o.group_creates_per_second_per_principal = 1;  // a bucket of 10
  BrokerHarness h(o);
  ASSERT_TRUE(SendTo(h, "producer", "t", "m").ok());
  h.SetPrincipal("c", "readers");
  h.SetPrincipal("other", "audit");
  auto pull = [&](const std::string& client, const std::string& group) {
    return StatusOf(h.Call(client, [&](wire::Envelope::Builder e) { FillPull(e, group, "t", 0); }));
  };
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(pull("c", "g" + std::to_string(i)).ok()) << i;
  ExpectRefusal(pull("c", "g10"), StatusCode::kOverloaded, "group-creates-per-second-per-principal",
                1);
  EXPECT_TRUE(pull("other", "a0").ok()) << "another principal has its own rate";
  h.Advance(2s);
  EXPECT_TRUE(pull("c", "g10").ok());
  EXPECT_TRUE(pull("c", "g11").ok());
  h.Advance(10s);
  ExpectRefusal(pull("c", "g12"), StatusCode::kResourceExhausted, "max-groups-per-principal", 12);
  EXPECT_TRUE(pull("c", "g3").ok()) << "its groups are served";
  EXPECT_EQ(h.groups().created_by().Of("readers"), 12u);
  h.groups().Erase("g3");
  EXPECT_TRUE(pull("c", "g12").ok()) << "a deleted group stops counting";
}

// ---- reply bytes ----

class ReplyLimits : public ::testing::Test {
 protected:
  static constexpr size_t kBody = 300 * 1024;
  static BrokerOptions Options() {
    BrokerOptions o = LimitOptions();
    o.max_reply_bytes_per_client = 1u << 20;
    o.max_reply_bytes = 2u << 20;
    return o;
  }
  void SetUp() override {
    for (int i = 0; i < 12; ++i) {
      const std::string id = "big" + std::to_string(i);
      ASSERT_TRUE(StatusOf(h_.Call("producer", [&](wire::Envelope::Builder e) {
                    FillSend(e, "t", id, std::string(kBody, 'x'));
                  })).ok());
    }
  }
  // A pull of one message whose answer the client does not read (it stays
  // in the link, holding its bytes).
  uint64_t PullOne(const std::string& client, const std::string& group) {
    const uint64_t id =
        h_.Submit(client, [&](wire::Envelope::Builder e) { FillPull(e, group, "t", 0, 1); });
    h_.Commit();
    return id;
  }
  BrokerHarness h_{Options()};
};

TEST_F(ReplyLimits, AClientThatDoesNotReadGetsAnErrorInsteadOfMoreBytes) {
  // Three unread replies of 300 KiB fit in 1 MiB; the fourth does not.
  for (int i = 0; i < 3; ++i) PullOne("reader", "g");
  EXPECT_GT(h_.core().limits().QueuedFor("reader"), 3 * kBody);
  const uint64_t fourth = PullOne("reader", "g");
  auto frames = h_.link().Take("reader");  // now it reads
  ASSERT_EQ(frames.size(), 4u);
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(frames[i].envelope().isPullOk());
  EXPECT_EQ(frames[3].envelope().getRequestId(), fourth);
  ExpectRefusal(wire::StatusOf(frames[3].envelope()), StatusCode::kOverloaded,
                "max-reply-bytes-per-client", 1u << 20);
  EXPECT_EQ(h_.core().limits().QueuedFor("reader"), 0u) << "read: released";
  EXPECT_EQ(h_.core().limits().refused(Limits::kReplyBytesPerClient), 1u);

  // The refused pull's message was given back at once, uncounted: the next
  // pull gets it as a first delivery.
  auto got = h_.Pull("reader", "g", "t", 60'000, 0, 1);
  ASSERT_TRUE(got && got->size() == 1u);
  EXPECT_EQ((*got)[0].id, "big3");
  EXPECT_EQ((*got)[0].delivery_count, 1u);
}

TEST_F(ReplyLimits, TheBrokerWideBudgetBoundsAllSlowClientsTogether) {
  for (int i = 0; i < 3; ++i) PullOne("slow1", "g1");
  for (int i = 0; i < 3; ++i) PullOne("slow2", "g2");
  // ~1.8 MiB wait in all. A third client that has nothing waiting gets one
  // reply (from the reserve that keeps slow clients from starving the
  // rest); its next 300 KiB, with the total past 2 MiB, does not fit.
  const uint64_t first = PullOne("slow3", "g3");
  const uint64_t refused = PullOne("slow3", "g3");
  EXPECT_TRUE(StatusOf(h_.link().TakeReply("slow3", first)).ok());
  auto reply = h_.link().TakeReply("slow3", refused);
  ExpectRefusal(StatusOf(reply), StatusCode::kOverloaded, "max-reply-bytes", 2u << 20);
  EXPECT_EQ(h_.core().limits().refused(Limits::kReplyBytes), 1u);
  // Small replies still fit, and once the slow clients read, big ones do.
  EXPECT_TRUE(SendTo(h_, "producer", "t", "small").ok());
  h_.link().Take("slow1");
  h_.link().Take("slow2");
  auto got = h_.Pull("slow3", "g3", "t", 60'000, 0, 1);
  ASSERT_TRUE(got && got->size() == 1u);
}

}  // namespace
}  // namespace txmq::broker
