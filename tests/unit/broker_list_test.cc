// The bootstrap list every client takes (broker_list.h) and the rules for
// moving through it (broker_picker.h).
#include <gtest/gtest.h>

#include "protocol/src/broker_list.h"
#include "protocol/src/broker_picker.h"

namespace txmq::net {
namespace {

using namespace std::chrono_literals;

TEST(BrokerList, OneUrlIsAListOfOne) {
  auto urls = ParseBrokerList("tcp://127.0.0.1:7800");
  ASSERT_TRUE(urls.ok()) << urls.status().ToString();
  EXPECT_EQ(*urls, std::vector<std::string>{"tcp://127.0.0.1:7800"});
}

// As txmqctl --broker takes it: HOST:PORT means tcp://HOST:PORT.
TEST(BrokerList, HostAndPortAloneIsTcp) {
  auto urls = ParseBrokerList("127.0.0.1:7800, tcp://127.0.0.1:7801,[::1]:7802");
  ASSERT_TRUE(urls.ok()) << urls.status().ToString();
  EXPECT_EQ(*urls, (std::vector<std::string>{"tcp://127.0.0.1:7800", "tcp://127.0.0.1:7801",
                                             "tcp://[::1]:7802"}));
}

// txmqd --listen: also tcp://HOST:*, a free port.
TEST(BrokerList, AnEndpointToBindMayAskForAFreePort) {
  EXPECT_EQ(EndpointProblem("tcp://127.0.0.1:*", /*bind=*/true), "");
  EXPECT_EQ(EndpointProblem("tcp://*:7800", /*bind=*/true), "");
  EXPECT_NE(EndpointProblem("tcp://127.0.0.1:*"), "");
  EXPECT_NE(EndpointProblem("7953", /*bind=*/true).find("is not tcp://HOST:PORT"),
            std::string::npos);
  EXPECT_EQ(WithTcpScheme("127.0.0.1:7953"), "tcp://127.0.0.1:7953");
  EXPECT_EQ(WithTcpScheme("7953"), "7953");
  EXPECT_EQ(WithTcpScheme("127.0.0.1:*"), "tcp://127.0.0.1:*");
  EXPECT_EQ(WithTcpScheme("ipc:///tmp/b"), "ipc:///tmp/b");
}

TEST(BrokerList, CommasSeparateAndBlanksAroundAreDropped) {
  auto urls = ParseBrokerList("tcp://127.0.0.1:1, tcp://127.0.0.1:2 ,ipc:///tmp/b,inproc://c");
  ASSERT_TRUE(urls.ok()) << urls.status().ToString();
  EXPECT_EQ(*urls, (std::vector<std::string>{"tcp://127.0.0.1:1", "tcp://127.0.0.1:2",
                                             "ipc:///tmp/b", "inproc://c"}));
}

TEST(BrokerList, ErrorsNameTheBadUrlAndWhereItIs) {
  struct Case {
    std::string text;
    std::string expected;
  };
  for (const Case& c : std::vector<Case>{
           {"tcp://127.0.0.1:1,,tcp://127.0.0.1:2", "broker URL 2 of "},
           {"tcp://127.0.0.1:1,", "broker URL 2 of 'tcp://127.0.0.1:1,' is empty"},
           {"", "broker URL is empty"},
           {"tcp://127.0.0.1:1,http://127.0.0.1:2", "'http://127.0.0.1:2', is not tcp://"},
           {"tcp://127.0.0.1:99999", "broker URL 'tcp://127.0.0.1:99999' has no port"},
           {"tcp://127.0.0.1", "broker URL 'tcp://127.0.0.1' has no HOST:PORT"},
           {"7800", "broker URL '7800' is not tcp://HOST:PORT"},
           {"127.0.0.1:99999", "broker URL 'tcp://127.0.0.1:99999' has no port 1-65535"},
           {"tcp://127.0.0.1:*", "broker URL 'tcp://127.0.0.1:*' has no port"},
           {"tcp://127.0.0.1:1,tcp://127.0.0.1:1", "broker URL 2 of "},
           {"ipc://", "broker URL 'ipc://' has no name"},
       }) {
    auto urls = ParseBrokerList(c.text);
    ASSERT_FALSE(urls.ok()) << "'" << c.text << "' was taken";
    EXPECT_EQ(urls.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(urls.status().message().find(c.expected), std::string::npos)
        << urls.status().message() << "\n  does not say: " << c.expected;
  }
  EXPECT_NE(ParseBrokerList("tcp://127.0.0.1:1,tcp://127.0.0.1:1")
                .status()
                .message()
                .find("appears twice"),
            std::string::npos);
}

const std::string kA = "tcp://127.0.0.1:1";
const std::string kB = "tcp://127.0.0.1:2";
const std::string kC = "tcp://127.0.0.1:3";
const std::string kL = "tcp://10.0.0.9:7800";  // a leader not in the list

TEST(BrokerPicker, FollowsTheNamedLeader) {
  BrokerPicker p({kA, kB, kC});
  const SteadyTime now = SteadyClock::now();
  EXPECT_EQ(p.current(), kA);
  EXPECT_EQ(p.OnNotLeader(kL, now), kL);
  EXPECT_EQ(p.current(), kL);
  EXPECT_LE(p.hold_until(), now);  // no wait: the leader is known
}

TEST(BrokerPicker, WithoutALeaderTriesTheNextUrlAfterABackoff) {
  BrokerPicker p({kA, kB, kC}, {.min_backoff = 50ms, .max_backoff = 200ms});
  const SteadyTime now = SteadyClock::now();
  EXPECT_EQ(p.OnNotLeader("", now), kB);
  EXPECT_EQ(p.hold_until(), now + 50ms);
  EXPECT_EQ(p.OnNotLeader("", now), kC);
  EXPECT_EQ(p.hold_until(), now + 100ms);
  EXPECT_EQ(p.OnNotLeader("", now), kA);
  EXPECT_EQ(p.OnNotLeader("", now), kB);
  EXPECT_EQ(p.hold_until(), now + 200ms);  // bounded
  p.OnServed();
  EXPECT_EQ(p.OnNotLeader("", now), kC);
  EXPECT_EQ(p.hold_until(), now + 50ms);
}

TEST(BrokerPicker, ALeaderThatJustRefusedIsNotFollowedBack) {
  BrokerPicker p({kA, kB, kC});
  SteadyTime now = SteadyClock::now();
  ASSERT_EQ(p.OnNotLeader(kL, now), kL);
  EXPECT_EQ(p.OnLinkDown(now), kB);  // the leader died
  // etcd still names it while the election runs: try the others instead.
  EXPECT_EQ(p.OnNotLeader(kL, now + 10ms), kC);
  // Long after, it may be back (restarted and elected again).
  now += 10s;
  EXPECT_EQ(p.OnNotLeader(kL, now), kL);
}

TEST(BrokerPicker, TheRotationSkipsAUrlThatJustRefused) {
  BrokerPicker p({kA, kB, kC});
  const SteadyTime now = SteadyClock::now();
  EXPECT_EQ(p.OnLinkDown(now), kB);  // kA died
  EXPECT_EQ(p.OnNotLeader(kA, now), kC);
  EXPECT_EQ(p.OnNotLeader(kA, now), kB);  // not kA, next in turn
  EXPECT_EQ(p.OnLinkDown(now), kC);
  EXPECT_EQ(p.OnLinkDown(now), kA);  // all refused lately: in turn again
}

TEST(BrokerPicker, ANodeNamingItselfIsAskedAgain) {
  BrokerPicker p({kA, kB});
  const SteadyTime now = SteadyClock::now();
  EXPECT_EQ(p.OnNotLeader(kA, now), "");
  EXPECT_EQ(p.current(), kA);
  EXPECT_GT(p.hold_until(), now);
}

TEST(BrokerPicker, OneUrlStaysWhenNobodyElseIsNamed) {
  BrokerPicker p({kA});
  const SteadyTime now = SteadyClock::now();
  EXPECT_EQ(p.OnLinkDown(now), "");  // a single broker restarts in place
  EXPECT_EQ(p.OnNotLeader("", now), "");
  EXPECT_EQ(p.current(), kA);
  // Sent to a follower: it names the leader; when that dies, back to the
  // URL given.
  EXPECT_EQ(p.OnNotLeader(kL, now + 5s), kL);
  EXPECT_EQ(p.OnLinkDown(now + 5s), kA);
}

TEST(BrokerPicker, ANewlyNamedLeaderIsFollowedThoughItRefusedJustBefore) {
  const std::string kD = "tcp://127.0.0.1:4";
  BrokerPicker p({kA, kB, kC, kD});
  const SteadyTime t = SteadyClock::now();
  ASSERT_EQ(p.OnNotLeader(kC, t), kC);
  EXPECT_EQ(p.OnLinkDown(t + 1ms), kB);  // kC died
  EXPECT_EQ(p.OnLinkDown(t + 2ms), kD);  // kB refused while it took over
  // kB is named now: its refusal came before, while kC was the leader.
  EXPECT_EQ(p.OnNotLeader(kB, t + 3ms), kB);
  // It refuses again while it opens its store: followed when named again.
  EXPECT_EQ(p.OnLinkDown(t + 4ms), kA);
  EXPECT_EQ(p.OnNotLeader(kB, t + 5ms), kB);
  // Refusing past the start grace, it counts as dead and is skipped.
  const SteadyTime later = t + 3ms + 2s + 1ms;
  EXPECT_NE(p.OnLinkDown(later), kB);
  EXPECT_NE(p.OnNotLeader(kB, later + 1ms), kB);
}

TEST(BrokerPicker, ABrokerThatServedAndWentSilentIsNotFollowedBack) {
  BrokerPicker p({kA, kB, kC});
  const SteadyTime t = SteadyClock::now();
  p.OnServed();                  // kA leads
  EXPECT_EQ(p.OnSilent(t), kB);  // paused: a call timed out
  EXPECT_GT(p.hold_until(), t);
  // kB still names it until its lease ends: not back to the paused one.
  EXPECT_EQ(p.OnNotLeader(kA, t + 10ms), kC);
  EXPECT_EQ(p.OnNotLeader("", t + 20ms), kB);
  // The next leader is named: followed at once.
  EXPECT_EQ(p.OnNotLeader(kC, t + 30ms), kC);
}

// Seen in TxmqdGroup's paused-leader test: kB, the leader, was paused
// and left a call unanswered; kC, just elected, refused for the moment
// before it bound its port; kA, not told yet, named nobody. 2.3 s after
// the pause the client went back to the paused kB (its failure older than
// refused_memory) and waited 2 s more for a connection. A node that only
// refused is tried before one that hung.
TEST(BrokerPicker, WithNoLeaderNamedANodeThatRefusedIsTriedBeforeOneThatHung) {
  BrokerPicker p({kA, kB, kC});
  const SteadyTime t = SteadyClock::now();
  ASSERT_EQ(p.OnNotLeader(kB, t), kB);
  p.OnServed();
  EXPECT_EQ(p.OnSilent(t + 1500ms), kC);           // kB paused: a call timed out
  EXPECT_EQ(p.OnNotLeader("", t + 3500ms), kA);    // kC: elected, not serving yet
  EXPECT_EQ(p.OnLinkDown(t + 3600ms, false), kC);  // kA refused (say, restarting)
  EXPECT_EQ(p.OnLinkDown(t + 3700ms, false), kA);  // kC refused while binding
  EXPECT_EQ(p.OnNotLeader("", t + 4000ms), kC) << "not the paused kB (2.5 s ago, hung)";
  // Long after, the hung one is tried in turn again.
  EXPECT_EQ(p.OnLinkDown(t + 10s, true), kA);
  EXPECT_EQ(p.OnNotLeader("", t + 10100ms), kB);
}

TEST(BrokerPicker, OneUrlStaysOnSilence) {
  BrokerPicker p({kA});
  const SteadyTime t = SteadyClock::now();
  EXPECT_EQ(p.OnSilent(t), "");
  EXPECT_EQ(p.current(), kA);
  EXPECT_EQ(p.hold_until(), SteadyTime{});  // no backoff either: as before
  // Also when it was sent to a leader outside its list.
  ASSERT_EQ(p.OnNotLeader(kL, t), kL);
  EXPECT_EQ(p.OnSilent(t + 1ms), "");
  EXPECT_EQ(p.current(), kL);
}

}  // namespace
}  // namespace txmq::net
