// The wall clock steps under a running txmqd (and while it is down): its
// schedules run on broker time (broker/src/clock.h), so nothing changes.
//
// libfaketime (Debian package libfaketime, pulled in by `faketime`) is
// preloaded into txmqd only. It reads the offset from a file on every call
// (FAKETIME_NO_CACHE) and leaves the monotonic clock alone
// (FAKETIME_DONT_FAKE_MONOTONIC), so writing "+2d" to the file is an NTP
// step of two days, and nothing else moves.
#include <gtest/gtest.h>

#include <atomic>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>

#include "protocol/src/message_codec.h"
#include "protocol/src/util.h"
#include "tests/testutil/admin_client.h"
#include "tests/testutil/testutil.h"
#include "txmq/consumer.h"
#include "txmq/producer.h"
#include "txmq/transaction_producer.h"

namespace txmq {
namespace {

using namespace std::chrono_literals;
using testing::AdminClient;
using testing::BrokerProcess;
using testing::TempDir;
using testing::WaitFor;

constexpr int64_t kHourMs = 3'600'000;
constexpr int64_t kDayMs = 24 * kHourMs;

std::string FaketimeLibrary() {
  for (const std::string& dir :
       {std::string(TXMQ_FAKETIME_DIR), std::string("/usr/lib/faketime")}) {
    const std::string path = dir + "/libfaketime.so.1";
    if (std::filesystem::exists(path)) return path;
  }
  return "";
}

// The offset txmqd's wall clock runs at, changed while it runs.
class WallClockShift {
 public:
  explicit WallClockShift(std::string path) : path_(std::move(path)) { Set("+0"); }
  // libfaketime's relative format: "+2d", "-1h", "+90m", "+0".
  void Set(const std::string& offset) {
    const std::string tmp = path_ + ".tmp";
    std::ofstream(tmp) << offset << "\n";
    std::filesystem::rename(tmp, path_);  // never a half-written file
  }
  std::vector<std::string> Env(const std::string& library) const {
    return {"LD_PRELOAD=" + library, "FAKETIME_TIMESTAMP_FILE=" + path_, "FAKETIME_NO_CACHE=1",
            "FAKETIME_DONT_FAKE_MONOTONIC=1"};
  }

 private:
  std::string path_;
};

// The wall-clock time (ms) on the log line that contains `needle`; -1 if
// there is none. Lines start "2026-12-01T20:14:44.123 ", in local time.
int64_t LoggedAtMs(const std::string& log_path, const std::string& needle) {
  for (const std::string& line : testing::SplitLines(testing::ReadFile(log_path))) {
    if (line.find(needle) == std::string::npos || line.size() < 23) continue;
    std::tm tm{};
    if (strptime(line.substr(0, 19).c_str(), "%Y-%m-%dT%H:%M:%S", &tm) == nullptr) return -1;
    tm.tm_isdst = -1;
    return static_cast<int64_t>(std::mktime(&tm)) * 1000 + std::stoi(line.substr(20, 3));
  }
  return -1;
}

class ClockJump : public ::testing::Test {
 protected:
  void SetUp() override {
    library_ = FaketimeLibrary();
    if (library_.empty()) {
      GTEST_SKIP() << "libfaketime is not installed (Debian package 'faketime'; scripts/deps.sh "
                      "installs it): cannot step txmqd's wall clock";
    }
  }

  std::unique_ptr<BrokerProcess> Broker(std::vector<std::string> args) {
    auto broker =
        std::make_unique<BrokerProcess>(dir_.Sub("data"), std::move(args), shift_.Env(library_));
    // libfaketime and jemalloc (txmqd's allocator) deadlock as they start.
    broker->UseBinary("txmq-test-txmqd-libc-malloc");
    return broker;
  }

  // Steps txmqd's wall clock and proves txmqd sees it: a topic created
  // afterwards is logged at the shifted time.
  void StepWallClock(BrokerProcess& broker, const std::string& offset, int64_t expected_ms) {
    shift_.Set(offset);
    const std::string probe = "probe-" + std::to_string(++probes_);
    AdminClient admin(broker.endpoint());
    auto created =
        admin.Call([&](wire::Envelope::Builder e) { e.initCreateTopic().setTopic(probe); });
    ASSERT_TRUE(created.ok()) << created.status().ToString();
    const std::string needle = "created topic '" + probe + "'";
    int64_t logged = -1;
    ASSERT_TRUE(WaitFor([&] { return (logged = LoggedAtMs(broker.log_path(), needle)) > 0; }))
        << "no log line '" << needle << "'";
    EXPECT_NEAR(static_cast<double>(logged - NowMs()), static_cast<double>(expected_ms),
                10.0 * 60 * 1000)
        << "txmqd does not run on the shifted wall clock: is libfaketime working?";
  }

  TempDir dir_;
  WallClockShift shift_{dir_.Sub("faketime")};
  std::string library_;
  int probes_ = 0;
};

// The state a group's copy of a message is in ("retrying", "consumed", ...).
std::string DeliveryStateOf(AdminClient& admin, const std::string& message_id,
                            const std::string& group) {
  auto shown =
      admin.Call([&](wire::Envelope::Builder e) { e.initShowMessage().setMessageId(message_id); });
  if (!shown.ok()) return "";
  for (auto d : shown->envelope().getShowMessageOk().getDeliveries()) {
    if (wire::ToString(d.getGroup()) == group) return wire::ToString(d.getState());
  }
  return "";
}

TEST_F(ClockJump, ForwardBeyondRetentionKeepsAnUnconsumedBacklog) {
  auto broker = Broker({"--retention", "1h"});
  ASSERT_TRUE(broker->Start());
  Producer p({.broker = broker->endpoint(), .group = "feeder"});
  ASSERT_TRUE(p.Start().ok());
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(p.Send({.topic = "backlog", .body = std::to_string(i)}).ok());
  }
  AdminClient admin(broker->endpoint());
  ASSERT_EQ(admin.TopicMessages("backlog"), 20);

  StepWallClock(*broker, "+2d", 2 * kDayMs);
  // Retention runs every second; give it a few rounds to (not) delete.
  std::this_thread::sleep_for(3500ms);
  EXPECT_EQ(admin.TopicMessages("backlog"), 20) << "the backlog is minutes old, not two days";
  EXPECT_EQ(testing::DrainTopic(broker->endpoint(), "backlog", 20).size(), 20u);
}

TEST_F(ClockJump, ForwardBeyondTheDedupWindowStillRefusesARecentResend) {
  auto broker = Broker({"--dedup-window", "1m"});
  ASSERT_TRUE(broker->Start());
  Producer p({.broker = broker->endpoint(), .group = "feeder"});
  ASSERT_TRUE(p.Start().ok());
  auto first = p.Send({.topic = "orders", .body = "once", .id = "order-42"});
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_FALSE(first->duplicate);

  StepWallClock(*broker, "+2h", 2 * kHourMs);
  std::this_thread::sleep_for(2500ms);  // dedup cleanup runs every second
  auto again = p.Send({.topic = "orders", .body = "once", .id = "order-42"});
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_TRUE(again->duplicate) << "a resend seconds later is inside the 1 min window";
  EXPECT_EQ(again->offset, first->offset);
  auto seen = testing::DrainTopic(broker->endpoint(), "orders", 1);
  EXPECT_EQ(seen["order-42"], 1);
  EXPECT_EQ(seen.size(), 1u);
}

TEST_F(ClockJump, BackwardKeepsRedeliveriesAndChecksOnTime) {
  auto broker = Broker({"--retry-backoff", "2s", "--transaction-timeout", "2s", "--check-interval",
                        "1s", "--check-interval-max", "1s"});
  ASSERT_TRUE(broker->Start());
  AdminClient admin(broker->endpoint());

  // A message whose first delivery fails: redelivery due 2 s later.
  std::atomic<int> deliveries{0};
  Consumer c({.broker = broker->endpoint(), .group = "workers", .long_poll = 300ms});
  ASSERT_TRUE(c.Subscribe("work", [&](const Received&) {
                 return ++deliveries == 1 ? ConsumeResult::RetryLater() : ConsumeResult::Success();
               }).ok());
  ASSERT_TRUE(c.Start().ok());
  Producer p({.broker = broker->endpoint(), .group = "feeder"});
  ASSERT_TRUE(p.Start().ok());
  auto sent = p.Send({.topic = "work", .body = "job"});
  ASSERT_TRUE(sent.ok());
  ASSERT_TRUE(
      WaitFor([&] { return DeliveryStateOf(admin, sent->message_id, "workers") == "retrying"; }));

  // A transaction whose outcome never came: first check due 2 s later.
  std::atomic<int> checks{0};
  TransactionProducer tp({.broker = broker->endpoint(), .group = "shop"}, [&](const CheckRequest&) {
    ++checks;
    return TxState::kCommit;
  });
  ASSERT_TRUE(tp.Start().ok());
  auto tx = tp.SendInTransaction({.topic = "paid", .body = "order"},
                                 [](const Message&) { return TxState::kUnknown; });
  ASSERT_TRUE(tx.ok()) << tx.status.ToString();

  const auto stepped = SteadyClock::now();
  StepWallClock(*broker, "-1d", -kDayMs);
  // Both were due within 2 s of the step; allow a slow machine 15 s.
  EXPECT_TRUE(WaitFor([&] { return deliveries >= 2; }, 15s))
      << "the redelivery waits for the wall clock to catch up a day";
  EXPECT_TRUE(WaitFor([&] { return checks >= 1; }, 15s))
      << "the check waits for the wall clock to catch up a day";
  EXPECT_TRUE(WaitFor([&] {
    auto info = admin.Show(tx.transaction_id);
    return info.ok() && info->state == wire::TxState::COMMITTED;
  }));
  EXPECT_LT(SteadyClock::now() - stepped, 15s);
  c.Shutdown();
}

TEST_F(ClockJump, BackwardWhileDownDoesNotStallWhatWasScheduled) {
  // The wall clock runs a day fast, the broker stops, someone corrects it.
  shift_.Set("+1d");
  auto broker = Broker({"--retry-backoff", "3s"});
  ASSERT_TRUE(broker->Start());
  AdminClient admin(broker->endpoint());
  std::atomic<int> deliveries{0};
  std::mutex mu;
  std::vector<Received> seen;
  auto handler = [&](const Received& m) {
    std::lock_guard<std::mutex> lock(mu);
    seen.push_back(m);
    return ++deliveries == 1 ? ConsumeResult::RetryLater() : ConsumeResult::Success();
  };
  std::string first_id;
  {
    Consumer c({.broker = broker->endpoint(), .group = "workers", .long_poll = 300ms});
    ASSERT_TRUE(c.Subscribe("work", handler).ok());
    ASSERT_TRUE(c.Start().ok());
    Producer p({.broker = broker->endpoint(), .group = "feeder"});
    ASSERT_TRUE(p.Start().ok());
    auto sent = p.Send({.topic = "work", .body = "job"});
    ASSERT_TRUE(sent.ok());
    first_id = sent->message_id;
    ASSERT_TRUE(WaitFor([&] { return DeliveryStateOf(admin, first_id, "workers") == "retrying"; }));
    c.Shutdown();
  }
  ASSERT_EQ(broker->Stop(), 0);

  shift_.Set("+0");
  ASSERT_TRUE(broker->Start());
  EXPECT_NE(testing::ReadFile(broker->log_path()).find("the wall clock is"), std::string::npos)
      << "the restart says the wall clock went back";
  Consumer c({.broker = broker->endpoint(), .group = "workers", .long_poll = 300ms});
  ASSERT_TRUE(c.Subscribe("work", handler).ok());
  ASSERT_TRUE(c.Start().ok());
  EXPECT_TRUE(WaitFor([&] { return deliveries >= 2; }, 15s))
      << "the redelivery waits for the wall clock to catch up a day";
  c.Shutdown();

  Producer p({.broker = broker->endpoint(), .group = "feeder"});
  ASSERT_TRUE(p.Start().ok());
  ASSERT_TRUE(p.Send({.topic = "later", .body = "after"}).ok());
  Consumer later({.broker = broker->endpoint(), .group = "readers", .long_poll = 300ms});
  std::atomic<bool> got{false};
  std::chrono::system_clock::time_point later_stored;
  ASSERT_TRUE(later
                  .Subscribe("later",
                             [&](const Received& m) {
                               later_stored = m.stored_at;
                               got = true;
                               return ConsumeResult::Success();
                             })
                  .ok());
  ASSERT_TRUE(later.Start().ok());
  ASSERT_TRUE(WaitFor([&] { return got.load(); }));
  later.Shutdown();
  std::lock_guard<std::mutex> lock(mu);
  ASSERT_FALSE(seen.empty());
  auto ms = [](std::chrono::system_clock::time_point t) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
  };
  EXPECT_GE(ms(later_stored), ms(seen.front().stored_at)) << "broker time never went backward";
}

}  // namespace
}  // namespace txmq
