// Threads: one per producer (SendLoad::Run), each owning its Producer;
// acked_ is shared under mu_.
#include "tests/testutil/send_load.h"

#include <gtest/gtest.h>

#include <chrono>
#include <iostream>

#include "txmq/producer.h"

namespace txmq::testing {

using namespace std::chrono_literals;

SendLoad::SendLoad(const std::string& endpoint, int producers, const std::string& topic)
    : endpoint_(endpoint), topic_(topic) {
  for (int p = 0; p < producers; ++p) threads_.emplace_back([this, p] { Run(p); });
}

SendLoad::~SendLoad() { Stop(); }

void SendLoad::Stop() {
  stop_ = true;
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
}

std::set<std::string> SendLoad::acked() {
  std::lock_guard<std::mutex> lock(mu_);
  return acked_;
}

size_t SendLoad::acked_count() {
  std::lock_guard<std::mutex> lock(mu_);
  return acked_.size();
}

void SendLoad::Run(int p) {
  Producer producer({.broker = endpoint_,
                     .group = "load",
                     .send_timeout = 1000ms,
                     .retries = 1000});  // keep resending the same ids until acked
  if (!producer.Start().ok()) return;
  std::atomic<int> in_flight{0};
  for (int seq = 0; !stop_; ++seq) {
    while (in_flight >= 32 && !stop_) std::this_thread::sleep_for(1ms);
    ++in_flight;
    std::string id = "p" + std::to_string(p) + "-" + std::to_string(seq);
    producer.SendAsync({.topic = topic_, .key = std::to_string(seq % 7), .body = id, .id = id},
                       [this, id, &in_flight](Result<SendResult> r) {
                         if (r.ok()) {
                           std::lock_guard<std::mutex> lock(mu_);
                           acked_.insert(id);
                         }
                         --in_flight;
                       });
  }
  producer.Shutdown();  // outstanding sends complete (unacknowledged) now
  while (in_flight > 0) std::this_thread::sleep_for(1ms);
}

void ExpectEveryAckedOnceAndNoneTwice(const std::set<std::string>& acked,
                                      const std::map<std::string, int>& seen) {
  size_t lost = 0, duplicates = 0;
  std::string first_lost, first_duplicate;
  for (const std::string& id : acked) {
    if (!seen.count(id) && lost++ == 0) first_lost = id;
  }
  for (const auto& [id, n] : seen) {
    if (n > 1 && duplicates == 0) first_duplicate = id;
    duplicates += n - 1;
  }
  ::testing::Test::RecordProperty("acked", static_cast<int>(acked.size()));
  ::testing::Test::RecordProperty("delivered", static_cast<int>(seen.size()));
  ::testing::Test::RecordProperty("duplicates", static_cast<int>(duplicates));
  std::cout << "acked " << acked.size() << ", delivered " << seen.size() << " distinct, "
            << duplicates << " duplicate deliveries\n";
  EXPECT_EQ(lost, 0u) << lost << " acknowledged messages lost, e.g. " << first_lost;
  EXPECT_EQ(duplicates, 0u) << duplicates << " ids stored twice, e.g. " << first_duplicate;
}

}  // namespace txmq::testing
