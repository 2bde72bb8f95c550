// The producer's check queue: while its checker hangs, checks of distinct
// transactions queue up to a bound, past which the oldest queued one is
// dropped (the broker asks again); repeats of one transaction stay one entry.
#include "producer/src/check_runner.h"

#include <gtest/gtest.h>

#include <condition_variable>
#include <mutex>
#include <set>

#include "tests/testutil/testutil.h"

namespace txmq::producer {
namespace {

using namespace std::chrono_literals;

CheckRequest Request(const std::string& tx, uint32_t count = 1) {
  CheckRequest r;
  r.transaction_id = tx;
  r.check_count = count;
  return r;
}

TEST(CheckRunner, AFullQueueDropsTheOldestQueuedCheck) {
  std::mutex mu;
  std::condition_variable cv;
  bool release = false;
  std::vector<std::string> run;  // tx ids, in the order the checker ran them
  std::set<uint64_t> replied;    // request ids answered
  CheckRunner runner(
      1,
      [&](const CheckRequest& c) {
        std::unique_lock<std::mutex> lock(mu);
        run.push_back(c.transaction_id);
        cv.wait(lock, [&] { return release; });
        return CheckAnswer{TxState::kUnknown, ""};
      },
      [&](uint64_t request, const std::string&, CheckAnswer) {
        std::lock_guard<std::mutex> lock(mu);
        replied.insert(request);
      });
  runner.Submit(1, Request("busy"));
  ASSERT_TRUE(testing::WaitFor([&] {
    std::lock_guard<std::mutex> lock(mu);
    return run.size() == 1;
  }));
  // The worker hangs on "busy": 10,000 checks fill the queue, one more
  // pushes the oldest out. Repeats of a queued transaction take no room.
  constexpr uint64_t kQueue = 10'000;
  for (uint64_t i = 0; i <= kQueue; ++i) {
    runner.Submit(100 + i, Request("tx-" + std::to_string(i)));
    if (i == 5) runner.Submit(50'000, Request("tx-5", 2));  // a repeat, coalesced
  }
  {
    std::lock_guard<std::mutex> lock(mu);
    release = true;
  }
  cv.notify_all();
  ASSERT_TRUE(testing::WaitFor(
      [&] {
        std::lock_guard<std::mutex> lock(mu);
        return replied.size() >= kQueue + 1;
      },
      30s));
  runner.Stop();
  std::lock_guard<std::mutex> lock(mu);
  ASSERT_EQ(run.size(), kQueue + 1) << "the running check and a full queue";
  EXPECT_EQ(run[1], "tx-1") << "tx-0, the oldest queued, was dropped";
  EXPECT_EQ(run.back(), "tx-" + std::to_string(kQueue));
  EXPECT_EQ(replied.count(100), 0u);
  EXPECT_EQ(replied.count(105), 0u) << "tx-5 answers its latest request";
  EXPECT_EQ(replied.count(50'000), 1u);
}

}  // namespace
}  // namespace txmq::producer
