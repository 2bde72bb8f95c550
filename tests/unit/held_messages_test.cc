// The consumer's per-key lanes, without threads or a broker.
#include "consumer/src/held_messages.h"

#include <gtest/gtest.h>

namespace txmq {
namespace {

using namespace std::chrono_literals;
using State = HeldMessages::State;

Received Msg(std::string topic, std::string key, std::string body) {
  Received m;
  m.topic = std::move(topic);
  m.key = std::move(key);
  m.body = std::move(body);
  return m;
}

std::string BodyOf(HeldMessages& held, std::optional<HeldMessages::Id> id) {
  if (!id) return "(none)";
  return held.Find(*id)->message.body;
}

TEST(HeldMessages, OneKeyRunsOneAtATimeInArrivalOrder) {
  HeldMessages held;
  const SteadyTime t = SteadyClock::now();
  held.Add(Msg("t", "a", "a1"), t);
  held.Add(Msg("t", "a", "a2"), t);
  held.Add(Msg("t", "b", "b1"), t);
  held.Add(Msg("t", "", "x1"), t);
  held.Add(Msg("other", "a", "o1"), t);  // same key, other topic: its own lane

  auto a1 = held.TakeReady();
  EXPECT_EQ(BodyOf(held, a1), "a1");
  EXPECT_EQ(BodyOf(held, held.TakeReady()), "b1");
  EXPECT_EQ(BodyOf(held, held.TakeReady()), "x1");
  EXPECT_EQ(BodyOf(held, held.TakeReady()), "o1");
  EXPECT_FALSE(held.TakeReady()) << "a2 waits while a1 runs";
  held.Finish(*a1);
  EXPECT_EQ(BodyOf(held, held.TakeReady()), "a2");
  EXPECT_EQ(held.size(), 4u);
}

TEST(HeldMessages, AFailedMessageRetriesBeforeItsKeysLaterOnes) {
  HeldMessages held;
  const SteadyTime t = SteadyClock::now();
  auto k = held.Add(Msg("t", "a", "k"), t);
  held.Add(Msg("t", "a", "k+1"), t);
  ASSERT_EQ(held.TakeReady(), k);
  held.Find(k)->state = State::kReporting;
  held.Backoff(k, t + 1s);
  EXPECT_FALSE(held.TakeReady());
  EXPECT_EQ(held.NextDue(0ms), t) << "leases of waiting messages are due for renewal";
  EXPECT_EQ(held.WakeDue(t + 999ms), 0u);
  EXPECT_EQ(held.WakeDue(t + 1s), 1u);
  EXPECT_EQ(held.TakeReady(), k) << "k again, not k+1";
  held.Finish(k);
  EXPECT_EQ(BodyOf(held, held.TakeReady()), "k+1");
}

TEST(HeldMessages, LosingAWaitingMessageKeepsTheLaneGoing) {
  HeldMessages held;
  const SteadyTime t = SteadyClock::now();
  auto a1 = held.Add(Msg("t", "a", "a1"), t);
  auto a2 = held.Add(Msg("t", "a", "a2"), t);
  held.Add(Msg("t", "a", "a3"), t);
  ASSERT_EQ(held.TakeReady(), a1);
  held.Finish(a2);  // its lease ended while it waited
  held.Finish(a1);
  EXPECT_EQ(BodyOf(held, held.TakeReady()), "a3");

  // A ready front that is lost hands over to the next one.
  auto b1 = held.Add(Msg("t", "b", "b1"), t);
  held.Add(Msg("t", "b", "b2"), t);
  held.Finish(b1);
  EXPECT_EQ(BodyOf(held, held.TakeReady()), "b2");
}

TEST(HeldMessages, RenewalSkipsRunningAndReportingMessages) {
  HeldMessages held;
  const SteadyTime t = SteadyClock::now();
  auto running = held.Add(Msg("t", "a", "a1"), t);
  auto waiting = held.Add(Msg("t", "a", "a2"), t);
  auto later = held.Add(Msg("t", "", "x"), t + 10s);
  ASSERT_EQ(held.TakeReady(), running);
  EXPECT_EQ(held.TakeForRenewal(t + 1s), std::vector<HeldMessages::Id>{waiting});
  EXPECT_TRUE(held.TakeForRenewal(t + 1s).empty()) << "already being renewed";
  held.Find(waiting)->renewing = false;
  EXPECT_EQ(held.TakeForRenewal(t + 11s), (std::vector<HeldMessages::Id>{waiting, later}));
}

TEST(HeldMessages, IdleMessagesComeBackInArrivalOrderPerKey) {
  HeldMessages held;
  const SteadyTime t = SteadyClock::now();
  auto a1 = held.Add(Msg("t", "a", "a1"), t);
  held.Add(Msg("t", "b", "b1"), t);
  held.Add(Msg("t", "a", "a2"), t);
  held.Add(Msg("t", "a", "a3"), t, /*source=*/1);
  ASSERT_EQ(held.TakeReady(), a1);
  EXPECT_EQ(BodyOf(held, held.TakeReady()), "b1");  // running: stays
  held.Find(a1)->state = State::kReporting;         // talking to the broker: stays
  // Each with the source it came from: it goes back there.
  std::vector<std::string> bodies;
  for (const auto& [source, m] : held.TakeIdle()) {
    bodies.push_back(m.body + "@" + std::to_string(source));
  }
  EXPECT_EQ(bodies, (std::vector<std::string>{"a2@0", "a3@1"}));
  EXPECT_EQ(held.size(), 2u);
}

}  // namespace
}  // namespace txmq
