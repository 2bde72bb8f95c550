#include "tests/cluster/keyed_load.h"

#include <memory>
#include <vector>

namespace txmq::testing {

KeyedLoad::KeyedLoad(KeyedLoadOptions options, OpHistory& history)
    : options_(std::move(options)), history_(history) {
  thread_ = std::thread([this] { Run(); });
}

KeyedLoad::~KeyedLoad() { Stop(); }

void KeyedLoad::Stop() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

void KeyedLoad::Run() {
  Producer producer({.broker = options_.brokers,
                     .send_timeout = options_.send_timeout,
                     .retries = options_.retries});
  if (!producer.Start().ok()) return;
  // Set by a send's callback (the producer's I/O thread), read here.
  auto busy = std::make_shared<std::vector<std::atomic<bool>>>(options_.keys);
  const auto interval = std::chrono::microseconds(1'000'000 / options_.per_second);
  auto next = std::chrono::steady_clock::now();
  int key = 0;
  while (!stop_) {
    const auto now = std::chrono::steady_clock::now();
    if (now < next) {
      std::this_thread::sleep_for(
          std::min<std::chrono::steady_clock::duration>(next - now, std::chrono::milliseconds(5)));
      continue;
    }
    // The next key with nothing in flight; none free: wait for one (the
    // rate drops while a failover holds every key's send).
    int free_key = -1;
    for (int i = 0; i < options_.keys && free_key < 0; ++i) {
      const int k = (key + i) % options_.keys;
      if (!(*busy)[k]) free_key = k;
    }
    if (free_key < 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
      continue;
    }
    key = free_key + 1;
    // Behind schedule after a stall: do not burst to catch up.
    next = std::max(next + interval, now - interval);
    (*busy)[free_key] = true;
    ++in_flight_;
    const std::string k = "k" + std::to_string(free_key);
    const auto op = history_.Invoke(k, options_.id_prefix);
    producer.SendAsync({.topic = options_.topic, .key = k, .body = op.id, .id = op.id},
                       [this, busy, free_key, index = op.index](Result<SendResult> r) {
                         history_.Complete(index, r);
                         (*busy)[free_key] = false;
                         --in_flight_;
                       });
  }
  // Every send in flight gets its outcome: an ack, or a failure once its
  // attempts are used up; what is left at the bound is completed
  // UNAVAILABLE by Shutdown (recorded as unknown).
  const auto bound =
      (options_.send_timeout + std::chrono::milliseconds(500)) * (options_.retries + 1);
  const auto deadline = std::chrono::steady_clock::now() + bound;
  while (in_flight_ > 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  producer.Shutdown();
}

}  // namespace txmq::testing
