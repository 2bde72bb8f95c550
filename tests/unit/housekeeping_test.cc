// Housekeeping costs what is due, not what is stored: with many topics and
// queues and nothing due, a retention tick looks at a handful of index
// entries (issue 10: an idle broker with a million topics burnt a core
// scanning every queue every second). And retention's rules for what an
// old segment still holds: open halves and waiting delayed messages move
// forward; what nothing will end or deliver lets the segment go.
#include <gtest/gtest.h>

#include <optional>
#include <thread>

#include "tests/testutil/fault_fs.h"
#include "tests/testutil/log_capture.h"
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

// Retention deletes by age, read or not: what a group had not received is
// counted (its cursor, the group, the broker) and logged, never silent.
TEST(Housekeeping, RetentionCountsAndLogsWhatAGroupHadNotReceived) {
  BrokerOptions o;
  o.default_queues = 1;
  o.max_message_bytes = 1u << 20;
  o.segment_bytes = 8u << 20;
  o.retention = 1h;
  o.cleanup_interval = 1s;
  BrokerHarness h(o);
  for (int i = 0; i < 5; ++i) h.Send("orders", "m" + std::to_string(i));
  // "slow" received two of five; "done" all of them; "other" reads another topic.
  auto slow = h.Pull("c1", "slow", "orders", 60'000, 0, 2);
  ASSERT_TRUE(slow.has_value());
  ASSERT_EQ(slow->size(), 2u);
  for (const Pulled& p : *slow) h.Ack("c1", "slow", p.receipt);
  auto done = h.Pull("c2", "done", "orders", 60'000);
  ASSERT_TRUE(done.has_value());
  ASSERT_EQ(done->size(), 5u);
  for (const Pulled& p : *done) h.Ack("c2", "done", p.receipt);
  h.Send("elsewhere", "e0");
  ASSERT_TRUE(h.Pull("c3", "other", "elsewhere", 60'000).has_value());

  testing::LogCapture log;
  h.Advance(o.retention + 2s);
  for (int tick = 0; tick < 10 && h.retention().expired() < 6; ++tick) h.Advance(1s);
  ASSERT_EQ(h.retention().expired(), 6u);

  GroupState* g = h.groups().Find("slow");
  ASSERT_NE(g, nullptr);
  EXPECT_EQ(g->expired, 3u);
  EXPECT_EQ(g->subscriptions.at("orders").queues[0].expired, 3u);
  EXPECT_EQ(h.groups().Find("done")->expired, 0u);
  EXPECT_EQ(h.groups().Find("other")->expired, 0u) << "it had received its message";
  EXPECT_EQ(h.core().counters().expired_unconsumed, 3u);
  const std::string text = log.text();
  EXPECT_NE(text.find("retention deleted 3 messages that group 'slow' had not received (latest: "
                      "orders/0 offsets 2..4"),
            std::string::npos)
      << text;
  EXPECT_EQ(text.find("that group 'done'"), std::string::npos) << text;
  EXPECT_EQ(text.find("that group 'other'"), std::string::npos) << text;
}

// One queue per topic, messages up to 256 KiB, kept for an hour.
BrokerOptions SegmentRetentionOptions() {
  BrokerOptions o;
  o.default_queues = 1;
  o.max_message_bytes = 256u << 10;
  o.retention = 1h;
  o.cleanup_interval = 1s;
  return o;
}

// Messages that expire after an hour, filling three of the harness's
// 8 MiB log segments.
void FillThreeSegments(BrokerHarness& h) {
  for (int i = 0; i < 90; ++i) {
    auto reply = h.Call("sender", [&](wire::Envelope::Builder e) {
      auto m = e.initSend().initMessage();
      m.setId("big-" + std::to_string(i));
      m.setTopic("big");
      m.setBody(wire::AsData(std::string(200u << 10, 'x')));
    });
    ASSERT_TRUE(reply.has_value() && reply->envelope().isSendOk());
  }
  ASSERT_GE(h.core().store().Segments().size(), 3u);
}

// The old segments go once a checkpoint covers what freed them (under the
// harness's flush async, once the background sync made it durable).
void ExpectOldSegmentsDeleted(BrokerHarness& h, testing::LogCapture& log) {
  EXPECT_TRUE(testing::WaitFor([&] {
    h.Advance(1s);
    EXPECT_TRUE(h.core().store().CheckpointNow().ok());
    return log.text().find("MiB of old log segments") != std::string::npos;
  })) << log.text();
}

// Retention takes a segment's runs out of the index in the open round;
// the segment may go only once that round is written. Deleted before, a
// crash in between (the round lost, the file gone) leaves an index naming
// messages in a segment that no longer exists, and the next start refuses
// the data directory ("a segment file holding acknowledged messages is
// missing") until --repair.
TEST(Housekeeping, RetentionKeepsASegmentUntilTheRoundDeletingItsRunsIsWritten) {
  // Synced rounds (the harness skips the sync otherwise), so checkpoints
  // cover them as on a broker under --flush sync.
  FaultLayers layers;
  BrokerOptions o = SegmentRetentionOptions();
  o.storage_layers = layers.Shared();
  BrokerHarness h(o);
  ASSERT_NO_FATAL_FAILURE(FillThreeSegments(h));
  ASSERT_TRUE(h.core().store().CheckpointNow().ok());  // covers past every full segment
  const size_t segments = h.core().store().Segments().size();
  testing::LogCapture log;
  h.time().Advance(o.retention + 1s);
  for (int tick = 0; tick < 5; ++tick) {  // the runs' deletes wait in the open round
    h.Housekeeping();
    h.time().Advance(1s);
    ASSERT_TRUE(h.core().store().CheckpointNow().ok());  // a periodic one
  }
  EXPECT_EQ(h.core().store().Segments().size(), segments)
      << "a segment was deleted before the round taking its runs out of the index was written\n"
      << log.text();
  h.Commit();
  ExpectOldSegmentsDeleted(h, log);
  EXPECT_LT(h.core().store().Segments().size(), segments);
}

// Under --flush async a checkpoint covers what the background sync has
// reached, which may stop short of the round that freed the segments.
// Retention asks again once such a checkpoint came; asked only once, an
// idle broker would keep the segments for ever (and block every later
// release).
TEST(Housekeeping, ARetentionReleaseIsNotStuckBehindACheckpointThatStoppedShort) {
  const BrokerOptions o = SegmentRetentionOptions();
  BrokerHarness h(o);  // flush async: checkpoints cover the background sync's progress
  ASSERT_NO_FATAL_FAILURE(FillThreeSegments(h));
  const size_t segments = h.core().store().Segments().size();
  testing::LogCapture log;
  h.time().Advance(o.retention + 1s);
  bool deleted = false;
  for (int tick = 0; tick < 50 && !deleted; ++tick) {  // no explicit checkpoints: only asked ones
    h.Advance(1s);
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    deleted = h.core().store().Segments().size() < segments;
  }
  EXPECT_TRUE(deleted) << log.text();
}

// Under steady traffic retention expires something every tick, mostly in
// the oldest segment. It asks for a checkpoint once per segment release,
// not once per tick: each checkpoint flushes the index to a new table.
TEST(Housekeeping, SteadyExpiryAsksForACheckpointPerReleaseNotPerTick) {
  FaultLayers layers;
  BrokerOptions o = SegmentRetentionOptions();
  o.retention = 30s;
  o.storage_layers = layers.Shared();
  BrokerHarness h(o);
  auto send = [&](int i) {
    auto reply = h.Call("sender", [&](wire::Envelope::Builder e) {
      auto m = e.initSend().initMessage();
      m.setId("steady-" + std::to_string(i));
      m.setTopic("steady");
      m.setBody(wire::AsData(std::string(100u << 10, 'x')));
    });
    ASSERT_TRUE(reply.has_value() && reply->envelope().isSendOk());
  };
  int i = 0;
  for (; i < 60; ++i) {  // 6 MiB a minute: a segment every 80 s
    ASSERT_NO_FATAL_FAILURE(send(i));
    h.Advance(1s);
  }
  const uint64_t before = h.core().store().stats().checkpoints;
  const size_t segments = h.core().store().Segments().size();
  for (; i < 300; ++i) {  // four minutes more: expiring a message a tick
    ASSERT_NO_FATAL_FAILURE(send(i));
    h.Advance(1s);
  }
  EXPECT_TRUE(testing::WaitFor([&] { return h.core().store().stats().checkpoints > before; }));
  const uint64_t checkpoints = h.core().store().stats().checkpoints - before;
  EXPECT_LE(checkpoints, 12u) << "checkpoints asked for in 240 ticks";
  EXPECT_LE(h.core().store().Segments().size(), segments + 1) << "old segments were not deleted";
}

// An old log segment holds the half of a transaction that is ending: its
// end is in a round not yet written (in the broker, possibly in flight on
// the storage thread while housekeeping runs), so the index still names
// the half. Retention must not copy it forward: a copy written after the
// end's delete would name the half in the index again, for ever (pinning
// its segment, and reported at every start as a half without an open
// transaction). Here the end's round is the open one; the copy would land
// behind the delete only with that round in flight, but it must not be
// made either way.
TEST(Housekeeping, RetentionLeavesTheHalfOfATransactionEndingInARoundNotYetWritten) {
  const BrokerOptions o = SegmentRetentionOptions();
  BrokerHarness h(o);  // its log segments are 8 MiB
  h.Hello("p", wire::Role::PRODUCER, "g");
  ASSERT_EQ(h.SendHalf("p", "g", "tx-old", {"m-old"}), wire::TxState::PREPARED);
  ASSERT_NO_FATAL_FAILURE(FillThreeSegments(h));
  testing::LogCapture log;
  h.Submit("p", [](wire::Envelope::Builder e) {
    auto end = e.initEndTransaction();
    end.setTransactionId("tx-old");
    end.setOutcome(wire::TxOutcome::COMMIT);
  });
  for (int tick = 0; tick < 20; ++tick) {  // retention runs; the end's round waits
    h.time().Advance(tick == 0 ? o.retention + 1s : 1s);
    h.Housekeeping();
  }
  EXPECT_EQ(log.text().find("copied"), std::string::npos) << log.text();
  h.Commit();
  ExpectOldSegmentsDeleted(h, log);
  int halves = 0;
  ASSERT_TRUE(
      h.core().store().ForEachHalf([&](auto, uint32_t, uint64_t) { return ++halves; }).ok());
  EXPECT_EQ(halves, 0);
}

// The same for a delayed message that came due: the housekeeping pass
// that moves it into its queue (its delete in the open round) runs
// retention next, which must not copy it forward (a copy applied after
// the delete would deliver it again after a restart).
TEST(Housekeeping, RetentionLeavesADelayedMessageMovedIntoItsQueueInARoundNotYetWritten) {
  const BrokerOptions o = SegmentRetentionOptions();
  BrokerHarness h(o);
  h.Send("later", "d1", /*delay_ms=*/2 * 3'600'000);
  ASSERT_NO_FATAL_FAILURE(FillThreeSegments(h));
  testing::LogCapture log;
  h.time().Advance(2h + 1s);  // the big messages expired, d1 is due
  h.Housekeeping();
  EXPECT_EQ(log.text().find("copied"), std::string::npos) << log.text();
  h.Commit();
  ExpectOldSegmentsDeleted(h, log);
  auto got = h.Pull("c", "readers", "later", 60'000);
  ASSERT_TRUE(got.has_value());
  ASSERT_EQ(got->size(), 1u);
  EXPECT_EQ((*got)[0].id, "d1");
}

// A half whose transaction ended without deleting it (a damaged half the
// commit could not read, or a copy retention made before it left ending
// transactions alone) will never be ended: retention deletes its index
// entry instead of holding its segment, and every later one, for ever.
TEST(Housekeeping, RetentionDropsAHalfNoTransactionWillEndAndFreesItsSegment) {
  const BrokerOptions o = SegmentRetentionOptions();
  BrokerHarness h(o);
  storage::MessageView orphan;
  orphan.id = "m-orphan";
  orphan.topic = "orders";
  orphan.body = "body";
  h.core().store().PutHalf({"tx-orphan", 0, 0, orphan});
  h.Commit();
  ASSERT_NO_FATAL_FAILURE(FillThreeSegments(h));
  testing::LogCapture log;
  h.Advance(o.retention + 1s);
  ExpectOldSegmentsDeleted(h, log);
  EXPECT_NE(log.text().find("dropping the index entry of half message 0 of transaction "
                            "'tx-orphan'"),
            std::string::npos)
      << log.text();
  int halves = 0;
  ASSERT_TRUE(
      h.core().store().ForEachHalf([&](auto, uint32_t, uint64_t) { return ++halves; }).ok());
  EXPECT_EQ(halves, 0);
}

// Topic "later", made by a delayed send (due in a second), and a message
// of it named `id` (a literal: the view keeps it).
const TopicState& LaterTopic(BrokerHarness& h) {
  h.Send("later", "d0", /*delay_ms=*/1000);
  const TopicState* topic = h.topics().Find("later");
  EXPECT_NE(topic, nullptr);
  return *topic;
}
storage::MessageView LaterMessage(const char* id) {
  storage::MessageView m;
  m.id = id;
  m.topic = "later";
  m.body = "body";
  return m;
}

// Delayed entries in the index (only sequence `seq`, when given).
int DelayedEntries(BrokerHarness& h, std::optional<uint64_t> seq = std::nullopt) {
  int n = 0;
  EXPECT_TRUE(h.core()
                  .store()
                  .ForEachDelayedPosition([&](int64_t, uint64_t s, uint64_t) {
                    n += !seq || s == *seq;
                    return true;
                  })
                  .ok());
  return n;
}

// A delayed message in the index but not (yet) scheduled: on a cluster
// leader, a round written whose completions wait for the quorum, so the
// acknowledgement (and Schedule) is still to come. Retention must leave
// it, not take it for a delivered one and delete it.
TEST(Housekeeping, RetentionLeavesADelayedMessageWhoseRoundHasNotCompleted) {
  const BrokerOptions o = SegmentRetentionOptions();
  BrokerHarness h(o);
  const TopicState& topic = LaterTopic(h);
  // Added as a send adds it; the send's completion (Schedule) never runs.
  const uint64_t seq =
      h.delayed().Add(h.NowMs() + 3 * 3'600'000, topic, 0, LaterMessage("d-pending"));
  h.Commit();
  ASSERT_NO_FATAL_FAILURE(FillThreeSegments(h));
  testing::LogCapture log;
  for (int tick = 0; tick < 10; ++tick) h.Advance(tick == 0 ? o.retention + 1s : 1s);
  EXPECT_EQ(log.text().find("dropping delayed message"), std::string::npos) << log.text();
  EXPECT_EQ(DelayedEntries(h, seq), 1);
}

// An index entry of a delayed message that nothing will deliver: neither
// waiting nor pending (a copy the old relocation race left behind after
// its delivery). Retention deletes it rather than keep its segment, and
// every later one, for ever; nothing is delivered.
TEST(Housekeeping, RetentionDropsADelayedEntryNothingWillDeliverAndFreesItsSegment) {
  const BrokerOptions o = SegmentRetentionOptions();
  BrokerHarness h(o);
  const TopicState& topic = LaterTopic(h);
  h.core().store().PutDelayed(
      {h.NowMs() + 3 * 3'600'000, 999, topic.id, 0, LaterMessage("d-orphan")});
  h.Commit();
  ASSERT_NO_FATAL_FAILURE(FillThreeSegments(h));
  testing::LogCapture log;
  h.Advance(o.retention + 1s);
  ExpectOldSegmentsDeleted(h, log);
  EXPECT_EQ(DelayedEntries(h), 0);
}

// A delayed message that came due but cannot be read is left in place
// (tried again after a restart). When retention wants its segment, nothing
// will ever move it in this run: its index entry goes, with a warning,
// instead of holding that segment and every later one for ever.
TEST(Housekeeping, RetentionDropsADelayedMessageThatCouldNotBeMovedAndFreesItsSegment) {
  const BrokerOptions o = SegmentRetentionOptions();
  BrokerHarness h(o);
  h.Send("later", "d-damaged", /*delay_ms=*/2 * 3'600'000);
  ASSERT_NO_FATAL_FAILURE(h.DamageLog("body of d-damaged"));
  ASSERT_NO_FATAL_FAILURE(FillThreeSegments(h));
  testing::LogCapture log;
  h.Advance(2h + 1s);  // the big messages expired, d-damaged is due
  EXPECT_NE(log.text().find("is unreadable"), std::string::npos) << log.text();
  ExpectOldSegmentsDeleted(h, log);
  EXPECT_NE(log.text().find("retention: dropping delayed message 1 due at"), std::string::npos)
      << log.text();
  EXPECT_EQ(DelayedEntries(h), 0);
}

}  // namespace
}  // namespace txmq::broker
