// Housekeeping costs what is due, not what is stored: with many topics and
// queues and nothing due, a retention tick looks at a handful of index
// entries (issue 10: an idle broker with a million topics burnt a core
// scanning every queue every second).
#include <gtest/gtest.h>

#include "tests/unit/broker_harness.h"

namespace txmq::broker {
namespace {

using namespace std::chrono_literals;

TEST(Housekeeping, RetentionLooksAtWhatIsDueNotAtEveryQueue) {
  BrokerOptions o;
  o.default_queues = 4;
  o.max_message_bytes = 1u << 20;
  o.segment_bytes = 8u << 20;
  o.retention = 1h;
  o.cleanup_interval = 1s;
  BrokerHarness h(o);
  constexpr int kTopics = 300;  // 1,200 queues, 300 queue runs
  for (int i = 0; i < kTopics; ++i) h.Send("t" + std::to_string(i), "m" + std::to_string(i));

  const uint64_t idle_start = h.retention().examined();
  for (int tick = 0; tick < 10; ++tick) h.Advance(1s);
  const uint64_t idle = h.retention().examined() - idle_start;
  EXPECT_GE(idle, 10u) << "each tick looks at least at the oldest run";
  EXPECT_LE(idle, 10u * 4) << "an idle tick must not visit every queue or run";

  // All of it due: the due work is done (runs and ids, a batch per tick)...
  const uint64_t due_start = h.retention().examined();
  h.Advance(1h);
  for (int tick = 0; tick < 20 && h.retention().expired() < kTopics; ++tick) h.Advance(50ms);
  EXPECT_EQ(h.retention().expired(), static_cast<uint64_t>(kTopics));
  EXPECT_LE(h.retention().examined() - due_start, 4u * kTopics) << "each due entry about once";

  // ...and then idle ticks are cheap again.
  const uint64_t after = h.retention().examined();
  for (int tick = 0; tick < 10; ++tick) h.Advance(1s);
  EXPECT_LE(h.retention().examined() - after, 10u * 4);
}

}  // namespace
}  // namespace txmq::broker
