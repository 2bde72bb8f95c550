// A disk that starts failing: fsync/fdatasync return EIO inside a real txmqd
// (an LD_PRELOAD shim, switched on by a trigger file). The broker must not
// acknowledge what it could not make durable, must stop instead of carrying
// on with a page cache it can no longer trust, and after a restart on a
// healthy disk every acknowledged message must still be there.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <set>
#include <thread>

#include "tests/testutil/testutil.h"
#include "txmq/producer.h"

namespace txmq {
namespace {

using namespace std::chrono_literals;
using testing::BrokerProcess;
using testing::TempDir;
using testing::WaitFor;

TEST(DiskError, AFailedFsyncIsNeverAcknowledgedAndTheBrokerStopsSafely) {
  TempDir dir;
  const std::string trigger = dir.Sub("fail-sync-now");
  BrokerProcess broker(dir.Sub("data"), {},
                       {"LD_PRELOAD=" + testing::BinPath("txmq-test-fail-sync.so"),
                        "TXMQ_TEST_FAIL_SYNC_IF=" + trigger,
                        // A sanitizer build's runtime would insist on being loaded first.
                        "ASAN_OPTIONS=verify_asan_link_order=0"});
  ASSERT_TRUE(broker.Start());

  // Three producers send until the broker fails them.
  std::mutex mu;
  std::set<std::string> acked;
  std::vector<std::string> errors;
  std::vector<std::string> unacknowledged;  // each sender's failed id
  std::atomic<bool> stop{false};
  std::vector<std::thread> senders;
  for (int t = 0; t < 3; ++t) {
    senders.emplace_back([&, t] {
      Producer p({.broker = broker.endpoint(), .send_timeout = 2s, .retries = 1});
      if (!p.Start().ok()) return;
      for (int i = 0; !stop && i < 100000; ++i) {
        std::string id = "m-" + std::to_string(t) + "-" + std::to_string(i);
        auto r = p.Send({.topic = "ledger", .body = "entry", .id = id});
        std::lock_guard<std::mutex> lock(mu);
        if (!r.ok()) {
          errors.push_back(r.status().ToString());
          unacknowledged.push_back(id);
          return;
        }
        acked.insert(id);
      }
    });
  }
  ASSERT_TRUE(WaitFor([&] {
    std::lock_guard<std::mutex> lock(mu);
    return acked.size() >= 300;
  }));
  std::ofstream(trigger) << "fail\n";  // the disk goes bad

  auto code = broker.WaitExit(20s);
  stop = true;
  for (auto& s : senders) s.join();
  ASSERT_TRUE(code.has_value()) << "the broker kept running on a failing disk";
  EXPECT_EQ(*code, 3) << "txmqd exits 3 when the broker stopped by itself";
  const std::string log = testing::ReadFile(broker.log_path());
  EXPECT_NE(log.find("storage write failed"), std::string::npos) << log;
  EXPECT_NE(log.find("Input/output error"), std::string::npos) << "the cause is named:\n" << log;
  ASSERT_EQ(errors.size(), 3u) << "every sender was told its send failed";
  bool named = false;
  for (const auto& e : errors) named |= e.find("Input/output error") != std::string::npos;
  EXPECT_TRUE(named) << "at least the senders in the failed round hear why, e.g. " << errors[0];

  // A healthy disk again: everything acknowledged is there.
  std::filesystem::remove(trigger);
  ASSERT_TRUE(broker.Start());
  size_t expected = acked.size();
  auto delivered = testing::DrainTopic(broker.endpoint(), "ledger", expected);
  for (const auto& id : acked)
    EXPECT_EQ(delivered.count(id), 1u) << "acknowledged " << id << " lost";
  // What was never acknowledged may or may not have reached the disk; the
  // producer's retry with the same id stores it at most once.
  Producer retry({.broker = broker.endpoint()});
  ASSERT_TRUE(retry.Start().ok());
  for (const std::string& id : unacknowledged) {
    auto r = retry.Send({.topic = "ledger", .body = "entry", .id = id});
    ASSERT_TRUE(r.ok()) << r.status().ToString();
  }
  auto again = testing::DrainTopic(broker.endpoint(), "ledger", expected + 3, 1500ms, 60s, "again");
  EXPECT_EQ(again.size(), expected + 3);
  for (const auto& [id, times] : again) EXPECT_EQ(times, 1) << id << " stored more than once";
}

}  // namespace
}  // namespace txmq
