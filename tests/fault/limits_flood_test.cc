// The floods of issue 10 against a real txmqd process: each is refused by
// the limit that names itself, the broker's resident memory (VmRSS of the
// txmqd process) stays under 300 MB, and a well-behaved producer on another
// client id keeps its send latency (p99 within 2x of its unloaded p99).
//
// Issue 10 measured, without limits: three clients asking `msg show` of a
// 1 MB message without reading: 884 MB; 50,000 parked polls from one
// client: 817 MB; 100,000 never-ended transactions: +124 MB; 1,000,000
// topics in a minute: 582 MB; 100,000 groups: +157 MB.
//
// Threads: the test thread runs the well-behaved producer; one flood thread
// per test owns its raw DEALER sockets.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <fstream>
#include <functional>
#include <thread>
#include <zmq.hpp>

#include "protocol/src/codec.h"
#include "protocol/src/message_codec.h"
#include "tests/testutil/admin_client.h"
#include "tests/testutil/secure_world.h"
#include "tests/testutil/testutil.h"
#include "txmq/producer.h"

namespace txmq {
namespace {

using namespace std::chrono_literals;
using testing::BrokerProcess;
using testing::TempDir;
using Clock = std::chrono::steady_clock;

constexpr uint64_t kRssBound = 300ull << 20;

// VmRSS of process `pid` in bytes (0 if it cannot be read).
uint64_t ResidentBytes(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(status, line);) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoull(line.substr(6)) * 1024;
  }
  return 0;
}

// What a flood got back.
struct FloodResult {
  uint64_t sent = 0;
  uint64_t ok = 0;
  std::map<StatusCode, uint64_t> errors;
  // Error replies whose message names `expect_flag`.
  uint64_t named = 0;
  std::string first_error;
  uint64_t peak_rss = 0;  // of the broker, sampled while flooding
};

// Sends `count` requests built by `fill` from one DEALER with `routing_id`,
// at most `window` unanswered, and reads the replies; stops waiting once
// all but `unanswered` are answered (parked polls), or after 60 s without
// a reply.
// With `keys`, the flood comes over CURVE as their principal.
FloodResult Flood(const std::string& endpoint, const std::string& routing_id, uint64_t count,
                  uint64_t window, uint64_t unanswered, const std::string& expect_flag,
                  pid_t broker_pid,
                  const std::function<void(uint64_t, wire::Envelope::Builder)>& fill,
                  const curve::ClientKeys* keys = nullptr) {
  FloodResult r;
  zmq::context_t context(1);
  zmq::socket_t s(context, zmq::socket_type::dealer);
  if (keys != nullptr) {
    s.set(zmq::sockopt::curve_serverkey, keys->server_key);
    s.set(zmq::sockopt::curve_publickey, keys->public_key);
    s.set(zmq::sockopt::curve_secretkey, keys->secret_key);
  }
  s.set(zmq::sockopt::routing_id, routing_id);
  s.set(zmq::sockopt::linger, 0);
  s.set(zmq::sockopt::sndhwm, 0);
  s.set(zmq::sockopt::rcvhwm, 0);
  s.connect(endpoint);
  uint64_t received = 0;
  auto last_reply = Clock::now();
  auto sampled = Clock::now();
  while (received + unanswered < count) {
    while (r.sent < count && r.sent - received < window) {
      wire::OutFrame request(r.sent + 1);
      fill(r.sent, request.envelope());
      s.send(request.Encode(), zmq::send_flags::none);
      ++r.sent;
    }
    zmq::pollitem_t item{s.handle(), 0, ZMQ_POLLIN, 0};
    if (zmq::poll(&item, 1, 1s) == 0) {
      if (Clock::now() - last_reply > 60s) break;
      continue;
    }
    zmq::message_t frame;
    while (s.recv(frame, zmq::recv_flags::dontwait)) {
      ++received;
      last_reply = Clock::now();
      auto decoded = wire::DecodeFrame(std::move(frame), {.max_frame_bytes = 64 << 20});
      if (!decoded.ok()) continue;
      const Status st = wire::StatusOf(decoded->envelope());
      if (st.ok()) {
        ++r.ok;
        continue;
      }
      ++r.errors[st.code()];
      if (r.first_error.empty()) r.first_error = st.ToString();
      if (st.message().find("--" + expect_flag) != std::string::npos) ++r.named;
    }
    if (Clock::now() - sampled > 200ms) {
      r.peak_rss = std::max(r.peak_rss, ResidentBytes(broker_pid));
      sampled = Clock::now();
    }
  }
  r.peak_rss = std::max(r.peak_rss, ResidentBytes(broker_pid));
  return r;
}

// The 99th percentile of send latencies.
Clock::duration P99(std::vector<Clock::duration> samples) {
  if (samples.empty()) return Clock::duration::max();
  std::sort(samples.begin(), samples.end());
  return samples[std::min(samples.size() - 1, samples.size() * 99 / 100)];
}

double Ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

// A producer that behaves: one send at a time, measured.
class GoodProducer {
 public:
  explicit GoodProducer(const ProducerOptions& options) : producer_(options) {
    EXPECT_TRUE(producer_.Start().ok());
  }
  // One send; its latency, or a test failure.
  void SendOne(std::vector<Clock::duration>* samples) {
    const auto start = Clock::now();
    auto sent = producer_.Send({.topic = "orders", .body = "order " + std::to_string(n_++)});
    samples->push_back(Clock::now() - start);
    EXPECT_TRUE(sent.ok()) << "the well-behaved producer was refused: " << sent.status().ToString();
  }
  Clock::duration UnloadedP99() {
    std::vector<Clock::duration> samples;
    for (int i = 0; i < 300; ++i) SendOne(&samples);
    return P99(samples);
  }
  // Sends while `flood` runs (and at least 300 times); the p99.
  Clock::duration LoadedP99(const std::function<void()>& flood) {
    std::atomic<bool> done{false};
    std::thread flooder([&] {
      flood();
      done = true;
    });
    std::vector<Clock::duration> samples;
    while (!done || samples.size() < 300) SendOne(&samples);
    flooder.join();
    return P99(samples);
  }

 private:
  Producer producer_;
  int n_ = 0;
};

// The promise to a well-behaved client, with a floor for a machine where
// other processes build and test at the same time: an unloaded p99 of 2 ms
// may meet a 20 ms scheduling hiccup that no broker change can prevent.
void ExpectLatencyKept(Clock::duration unloaded, Clock::duration loaded) {
  ::testing::Test::RecordProperty("unloaded_p99_ms", std::to_string(Ms(unloaded)));
  ::testing::Test::RecordProperty("loaded_p99_ms", std::to_string(Ms(loaded)));
  std::cout << "well-behaved producer: send p99 " << Ms(unloaded) << " ms unloaded, " << Ms(loaded)
            << " ms during the flood\n";
  EXPECT_LE(loaded, std::max(2 * unloaded, unloaded + 25ms))
      << "unloaded p99 " << Ms(unloaded) << " ms, loaded " << Ms(loaded) << " ms";
}

// The broker's use of `limit` (txmqctl status): {used, refused}.
std::pair<uint64_t, uint64_t> LimitUse(const std::string& endpoint, const std::string& limit,
                                       const curve::ClientKeys& admin_keys = {}) {
  testing::AdminClient admin(endpoint, admin_keys);
  auto status = admin.Call([](wire::Envelope::Builder e) { e.setStatus(); });
  EXPECT_TRUE(status.ok()) << status.status().ToString();
  if (!status.ok()) return {0, 0};
  for (auto l : status->envelope().getStatusOk().getLimits()) {
    if (wire::ToString(l.getName()) == limit) return {l.getUsed(), l.getRefused()};
  }
  ADD_FAILURE() << "status has no limit " << limit;
  return {0, 0};
}

class LimitsFlood : public ::testing::Test {
 protected:
  void StartBroker(std::vector<std::string> args = {}, ProducerOptions good = {}) {
    broker_ = std::make_unique<BrokerProcess>(dir_.Sub("data"), std::move(args));
    ASSERT_TRUE(broker_->Start());
    good.broker = broker_->endpoint();
    good_ = std::make_unique<GoodProducer>(good);
    unloaded_ = good_->UnloadedP99();
  }
  void TearDown() override {
    if (broker_ != nullptr) {
      const uint64_t rss = ResidentBytes(broker_->pid());
      std::cout << "txmqd VmRSS at the end: " << (rss >> 20) << " MiB\n";
      EXPECT_LT(rss, kRssBound);
    }
  }
  pid_t pid() const { return broker_->pid(); }
  const std::string& endpoint() const { return broker_->endpoint(); }

  TempDir dir_;
  std::unique_ptr<BrokerProcess> broker_;
  std::unique_ptr<GoodProducer> good_;
  Clock::duration unloaded_{};
};

TEST_F(LimitsFlood, ThreeClientsAskingForAOneMegabyteMessageWithoutReading) {
  StartBroker();
  Producer big_producer({.broker = endpoint()});
  ASSERT_TRUE(big_producer.Start().ok());
  auto big = big_producer.Send({.topic = "big", .body = std::string(1 << 20, 'x')});
  ASSERT_TRUE(big.ok()) << big.status().ToString();

  // Each client asks 300 times (300 MB each unbounded) and never reads:
  // its socket takes one frame, then TCP pushes back on the broker.
  constexpr int kClients = 3, kAsks = 300;
  zmq::context_t context(1);
  std::vector<std::unique_ptr<zmq::socket_t>> readers;
  uint64_t peak = 0;
  const auto loaded = good_->LoadedP99([&] {
    for (int c = 0; c < kClients; ++c) {
      auto s = std::make_unique<zmq::socket_t>(context, zmq::socket_type::dealer);
      s->set(zmq::sockopt::routing_id, "never-reads-" + std::to_string(c));
      s->set(zmq::sockopt::rcvhwm, 1);
      s->set(zmq::sockopt::rcvbuf, 64 * 1024);
      s->set(zmq::sockopt::linger, 0);
      s->connect(endpoint());
      for (int i = 1; i <= kAsks; ++i) {
        wire::OutFrame ask(i);
        ask.envelope().initShowMessage().setMessageId(big->message_id);
        s->send(ask.Encode(), zmq::send_flags::none);
      }
      readers.push_back(std::move(s));
    }
    // Until the broker has answered (or refused) them all.
    testing::WaitFor(
        [&] {
          peak = std::max(peak, ResidentBytes(pid()));
          auto [u1, per_client] = LimitUse(endpoint(), "max-reply-bytes-per-client");
          auto [u2, total] = LimitUse(endpoint(), "max-reply-bytes");
          return per_client + total >= kClients * (kAsks - 40);
        },
        60s);
  });
  auto [queued, per_client] = LimitUse(endpoint(), "max-reply-bytes-per-client");
  auto [all_queued, total] = LimitUse(endpoint(), "max-reply-bytes");
  std::cout << "refused: " << per_client << " by the client budget, " << total
            << " by the broker's; peak VmRSS " << (peak >> 20) << " MiB\n";
  EXPECT_GE(per_client + total, kClients * (kAsks - 40)) << "the replies did not fit";
  EXPECT_LE(queued, (32u << 20) + (1u << 20) + (64u << 10)) << "one client holds its budget";
  EXPECT_LT(peak, kRssBound) << "peak VmRSS " << (peak >> 20) << " MiB";
  ExpectLatencyKept(unloaded_, loaded);

  // A slow reader that reads finds the error naming the limit.
  zmq::message_t frame;
  int named = 0;
  for (int i = 0; i < kAsks; ++i) {
    zmq::pollitem_t item{readers[0]->handle(), 0, ZMQ_POLLIN, 0};
    if (zmq::poll(&item, 1, 5s) == 0) break;
    ASSERT_TRUE(readers[0]->recv(frame, zmq::recv_flags::dontwait));
    auto decoded = wire::DecodeFrame(std::move(frame), {.max_frame_bytes = 64 << 20});
    ASSERT_TRUE(decoded.ok());
    const Status s = wire::StatusOf(decoded->envelope());
    if (s.ok()) continue;
    EXPECT_EQ(s.code(), StatusCode::kOverloaded) << s.ToString();
    if (s.message().find("--max-reply-bytes") != std::string::npos) ++named;
  }
  EXPECT_GE(named, kAsks / 2);
}

TEST_F(LimitsFlood, FiftyThousandParkedPollsFromOneClient) {
  StartBroker();
  constexpr uint64_t kPolls = 50'000, kParkedPerClient = 16;
  FloodResult r;
  const auto loaded = good_->LoadedP99([&] {
    r = Flood(endpoint(), "poller", kPolls, 1024, kParkedPerClient, "max-parked-pulls-per-client",
              pid(), [](uint64_t, wire::Envelope::Builder e) {
                auto pull = e.initPull();
                pull.setGroup("pollers");
                pull.initTopics(1).set(0, "quiet");
                pull.setMaxMessages(1);
                pull.setWaitMs(60'000);
              });
  });
  std::cout << "parked polls: " << r.errors[StatusCode::kOverloaded]
            << " refused, first: " << r.first_error << "; peak VmRSS " << (r.peak_rss >> 20)
            << " MiB\n";
  EXPECT_EQ(r.sent, kPolls);
  EXPECT_EQ(r.errors[StatusCode::kOverloaded], kPolls - kParkedPerClient);
  EXPECT_EQ(r.named, kPolls - kParkedPerClient) << r.first_error;
  EXPECT_EQ(LimitUse(endpoint(), "max-parked-pulls").first, kParkedPerClient);
  EXPECT_LT(r.peak_rss, kRssBound);
  ExpectLatencyKept(unloaded_, loaded);
}

// One client that never waits: sends stream in far faster than rounds
// reach the disk. Past its in-flight limit each request is answered
// OVERLOADED at once, naming the limit, instead of queueing without bound.
TEST_F(LimitsFlood, OneClientSendingWithoutWaitingIsHeldToItsInFlightLimit) {
  constexpr uint64_t kSends = 50'000, kInFlight = 64;
  StartBroker({"--flush", "sync", "--max-in-flight-per-client", std::to_string(kInFlight)});
  FloodResult r;
  const auto loaded = good_->LoadedP99([&] {
    r = Flood(endpoint(), "impatient", kSends, 1024, 0, "max-in-flight-per-client", pid(),
              [](uint64_t i, wire::Envelope::Builder e) {
                auto m = e.initSend().initMessage();
                m.setId("impatient-" + std::to_string(i));
                m.setTopic("flood");
                m.setBody(wire::AsData(std::string(100, 'f')));
              });
  });
  const uint64_t refused = r.errors[StatusCode::kOverloaded];
  std::cout << "sends: " << r.ok << " stored, " << refused << " refused, first: " << r.first_error
            << "; peak VmRSS " << (r.peak_rss >> 20) << " MiB\n";
  EXPECT_EQ(r.sent, kSends);
  EXPECT_EQ(r.ok + refused, kSends) << "every send is answered, stored or refused";
  EXPECT_GT(refused, 0u) << "the flood never met the limit: it tests nothing";
  EXPECT_EQ(r.named, refused) << r.first_error;
  EXPECT_GT(LimitUse(endpoint(), "max-in-flight-per-client").second, 0u);
  EXPECT_LT(r.peak_rss, kRssBound);
  ExpectLatencyKept(unloaded_, loaded);
}

TEST_F(LimitsFlood, AHundredThousandNeverEndedTransactions) {
  // The group limit at its default (10,000): the flood fills it, then
  // every further half is refused; another producer group is not affected.
  StartBroker();
  constexpr uint64_t kHalves = 100'000, kPerGroup = 10'000;
  FloodResult r;
  const auto loaded = good_->LoadedP99([&] {
    r = Flood(endpoint(), "never-ends", kHalves, 256, 0, "max-open-transactions-per-group", pid(),
              [](uint64_t i, wire::Envelope::Builder e) {
                auto h = e.initSendHalf();
                h.setTransactionId("flood-" + std::to_string(i));
                h.setProducerGroup("flooders");
                auto m = h.initMessages(1)[0];
                m.setId("flood-m-" + std::to_string(i));
                m.setTopic("payments");
                m.setBody(wire::AsData(std::string(100, 'p')));
              });
  });
  std::cout << "halves: " << r.ok << " open, " << r.errors[StatusCode::kResourceExhausted]
            << " refused, first: " << r.first_error << "; peak VmRSS " << (r.peak_rss >> 20)
            << " MiB\n";
  EXPECT_EQ(r.ok, kPerGroup);
  EXPECT_EQ(r.errors[StatusCode::kResourceExhausted], kHalves - kPerGroup);
  EXPECT_EQ(r.named, kHalves - kPerGroup) << r.first_error;
  EXPECT_LT(r.peak_rss, kRssBound);
  ExpectLatencyKept(unloaded_, loaded);

  testing::AdminClient other(endpoint());
  auto half = other.Call([](wire::Envelope::Builder e) {
    auto h = e.initSendHalf();
    h.setTransactionId("good-1");
    h.setProducerGroup("payments-service");
    auto m = h.initMessages(1)[0];
    m.setId("good-m-1");
    m.setTopic("payments");
    m.setBody(wire::AsData(std::string("ok")));
  });
  EXPECT_TRUE(half.ok()) << "another producer group still opens transactions: "
                         << half.status().ToString();
}

TEST_F(LimitsFlood, TopicCreationsAreRefusedLongBeforeAMillion) {
  // 200,000 attempts, not 1,000,000: the rate (100 a second after a burst
  // of 1,000) says no after the first thousand, so more attempts only cost
  // test time; the bound below holds whatever the count.
  StartBroker();
  constexpr uint64_t kAttempts = 200'000;
  FloodResult r;
  const auto start = Clock::now();
  const auto loaded = good_->LoadedP99([&] {
    r = Flood(endpoint(), "topic-maker", kAttempts, 512, 0, "topic-creates-per-second", pid(),
              [](uint64_t i, wire::Envelope::Builder e) {
                auto m = e.initSend().initMessage();
                m.setId("t-" + std::to_string(i));
                m.setTopic("flood-" + std::to_string(i));
                m.setBody(wire::AsData(std::string("x")));
              });
  });
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  auto [topics, refused] = LimitUse(endpoint(), "topic-creates-per-second");
  const uint64_t created = LimitUse(endpoint(), "max-topics").first;
  std::cout << "topics: " << r.ok << " created in " << seconds << " s, "
            << r.errors[StatusCode::kOverloaded] << " refused, first: " << r.first_error
            << "; peak VmRSS " << (r.peak_rss >> 20) << " MiB\n";
  EXPECT_EQ(r.sent, kAttempts);
  EXPECT_LE(r.ok, 1000 + 100 * (seconds + 1)) << "the burst plus the rate";
  EXPECT_GE(r.ok, 1000u);
  EXPECT_EQ(r.ok + r.errors[StatusCode::kOverloaded], kAttempts);
  EXPECT_EQ(r.named, kAttempts - r.ok) << r.first_error;
  EXPECT_EQ(refused, kAttempts - r.ok);
  EXPECT_LE(created, r.ok + 2) << "the good producer's topic, and the broker's own";
  EXPECT_LT(r.peak_rss, kRssBound);
  ExpectLatencyKept(unloaded_, loaded);
}

// With CURVE, one principal's flood of new topics meets its own rate
// (--topic-creates-per-second-per-principal, 20 a second after a burst of
// 200) long before the broker's (100 a second after 1,000): another
// principal still creates its topics at once, and sends as before.
TEST_F(LimitsFlood, OnePrincipalsTopicFloodLeavesOthersTheBrokersCreationRate) {
  testing::SecureWorld world(dir_.path(), {{.name = "ops", .admin = true},
                                           {.name = "flood", .produce = {"flood-*"}},
                                           {.name = "good", .produce = {"orders", "good-*"}}});
  ASSERT_NO_FATAL_FAILURE(
      StartBroker({"--curve-secret-key", world.broker_key_file(), "--acl", world.acl_file()},
                  {.curve_key = world.key_file("good"), .server_key = world.broker_pub_file()}));
  constexpr uint64_t kAttempts = 20'000;
  const curve::ClientKeys flood_keys = world.client_keys("flood");
  FloodResult r;
  const auto start = Clock::now();
  const auto loaded = good_->LoadedP99([&] {
    r = Flood(
        endpoint(), "topic-maker", kAttempts, 512, 0, "topic-creates-per-second-per-principal",
        pid(),
        [](uint64_t i, wire::Envelope::Builder e) {
          auto m = e.initSend().initMessage();
          m.setId("t-" + std::to_string(i));
          m.setTopic("flood-" + std::to_string(i));
          m.setBody(wire::AsData(std::string("x")));
        },
        &flood_keys);
  });
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  std::cout << "flood topics: " << r.ok << " created in " << seconds << " s, "
            << r.errors[StatusCode::kOverloaded] << " refused, first: " << r.first_error << "\n";
  EXPECT_EQ(r.sent, kAttempts);
  EXPECT_GE(r.ok, 200u);
  EXPECT_LE(r.ok, 200 + 20 * (seconds + 1)) << "the principal's burst plus its rate";
  EXPECT_EQ(r.ok + r.errors[StatusCode::kOverloaded], kAttempts);
  EXPECT_EQ(r.named, kAttempts - r.ok) << r.first_error;

  // The broker's bucket kept what the flood was refused: another principal
  // creates its burst of 200 new topics at once (had the flood taken the
  // broker's burst, these would be refused OVERLOADED).
  Producer good({.broker = endpoint(),
                 .curve_key = world.key_file("good"),
                 .server_key = world.broker_pub_file(),
                 .retries = 0});
  ASSERT_TRUE(good.Start().ok());
  for (int i = 0; i < 200; ++i) {
    auto sent = good.Send({.topic = "good-" + std::to_string(i), .body = "mine"});
    ASSERT_TRUE(sent.ok()) << i << ": " << sent.status().ToString();
  }
  const curve::ClientKeys ops = world.client_keys("ops");
  EXPECT_EQ(LimitUse(endpoint(), "topic-creates-per-second", ops).second, 0u)
      << "nobody met the broker's rate";
  EXPECT_EQ(LimitUse(endpoint(), "max-topics-per-principal", ops).first,
            std::max<uint64_t>(r.ok, 201))
      << "the larger of flood's and good's (200 and orders)";
  ExpectLatencyKept(unloaded_, loaded);
}

TEST_F(LimitsFlood, TopicCountIsABoundAndTheStatusStaysFast) {
  // The count: with a high rate the flood meets --max-topics instead, and
  // the broker stays quick to answer status with all of them.
  StartBroker({"--max-topics", "3000", "--topic-creates-per-second", "1000000"});
  constexpr uint64_t kAttempts = 20'000;
  FloodResult r = Flood(endpoint(), "topic-maker", kAttempts, 512, 0, "max-topics", pid(),
                        [](uint64_t i, wire::Envelope::Builder e) {
                          auto m = e.initSend().initMessage();
                          m.setId("t-" + std::to_string(i));
                          m.setTopic("flood-" + std::to_string(i));
                          m.setBody(wire::AsData(std::string("x")));
                        });
  const uint64_t topics = LimitUse(endpoint(), "max-topics").first;
  EXPECT_EQ(topics, 3000u);
  EXPECT_EQ(r.errors[StatusCode::kResourceExhausted], kAttempts - r.ok);
  EXPECT_EQ(r.named, kAttempts - r.ok) << r.first_error;
  const auto start = Clock::now();
  LimitUse(endpoint(), "max-topics");
  EXPECT_LT(Clock::now() - start, 1s) << "status with the most topics allowed";
  std::vector<Clock::duration> samples;
  for (int i = 0; i < 300; ++i) good_->SendOne(&samples);
  ExpectLatencyKept(unloaded_, P99(samples));
}

TEST_F(LimitsFlood, AHundredThousandConsumerGroups) {
  StartBroker();
  constexpr uint64_t kAttempts = 100'000;
  FloodResult r;
  const auto start = Clock::now();
  const auto loaded = good_->LoadedP99([&] {
    r = Flood(endpoint(), "group-maker", kAttempts, 512, 0, "group-creates-per-second", pid(),
              [](uint64_t i, wire::Envelope::Builder e) {
                auto pull = e.initPull();
                pull.setGroup("g-" + std::to_string(i));
                pull.initTopics(1).set(0, "orders");
                pull.setMaxMessages(1);
                pull.setWaitMs(0);
              });
  });
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  const uint64_t groups = LimitUse(endpoint(), "max-groups").first;
  std::cout << "groups: " << groups << " after " << seconds << " s, "
            << r.errors[StatusCode::kOverloaded] << " refused, first: " << r.first_error
            << "; peak VmRSS " << (r.peak_rss >> 20) << " MiB\n";
  EXPECT_EQ(r.sent, kAttempts);
  EXPECT_GE(groups, 1000u);
  EXPECT_LE(groups, 1000 + 100 * (seconds + 1)) << "the burst plus the rate";
  EXPECT_EQ(r.ok + r.errors[StatusCode::kOverloaded], kAttempts);
  EXPECT_EQ(r.named, kAttempts - r.ok) << r.first_error;
  EXPECT_LT(r.peak_rss, kRssBound);
  ExpectLatencyKept(unloaded_, loaded);
}

}  // namespace
}  // namespace txmq
