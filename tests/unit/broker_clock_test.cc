// Broker time with a fake machine clock: wall-clock steps change nothing,
// it continues from what a data directory recorded, every commit round
// records it, and the dedup window counts in it.
#include <gtest/gtest.h>

#include <memory>

#include "broker/src/clock.h"
#include "broker/src/core.h"
#include "broker/src/dedup.h"
#include "broker/src/topics.h"
#include "protocol/src/event_fd.h"
#include "storage/src/broker_store.h"
#include "tests/testutil/testutil.h"

namespace txmq::broker {
namespace {

using namespace std::chrono_literals;

using FakeTimeSource = ManualTimeSource;

// Frames to clients go nowhere: these tests send none.
class NoLink final : public ClientLink {
 public:
  bool Send(const std::string&, wire::OutFrame&, ReplyTicket) override { return false; }
};

TEST(BrokerClock, StartsAtTheWallClockAndIgnoresItsSteps) {
  FakeTimeSource machine;
  BrokerClock clock(machine);
  const int64_t start = machine.WallMs();
  EXPECT_EQ(clock.NowMs(), start);
  machine.Advance(1500ms);
  EXPECT_EQ(clock.NowMs(), start + 1500);
  machine.StepWall(-std::chrono::hours(5));
  EXPECT_EQ(clock.NowMs(), start + 1500) << "a backward step does not stop time";
  machine.StepWall(std::chrono::hours(24 * 3));
  EXPECT_EQ(clock.NowMs(), start + 1500) << "a forward step does not skip time";
  machine.Advance(250ms);
  EXPECT_EQ(clock.NowMs(), start + 1750);
}

TEST(BrokerClock, ContinuesFromARecordedTimeAheadOfTheWallClock) {
  FakeTimeSource machine;
  BrokerClock clock(machine);
  machine.Advance(100ms);  // recovery takes a while
  const int64_t recorded = machine.WallMs() + 3'600'000;
  EXPECT_EQ(clock.Resume(recorded), 3'600'000);
  EXPECT_EQ(clock.NowMs(), recorded);
  machine.Advance(40ms);
  EXPECT_EQ(clock.NowMs(), recorded + 40);

  BrokerClock later(machine);  // a data directory whose record is in the past
  EXPECT_EQ(later.Resume(machine.WallMs() - 5000), 0);
  EXPECT_EQ(later.NowMs(), machine.WallMs());
}

TEST(BrokerClock, StoredFormRoundTripsAndRejectsGarbage) {
  int64_t ms = 0;
  ASSERT_TRUE(DecodeBrokerTime(EncodeBrokerTime(1'700'000'123'456), &ms));
  EXPECT_EQ(ms, 1'700'000'123'456);
  EXPECT_FALSE(DecodeBrokerTime("short", &ms));
  EXPECT_FALSE(DecodeBrokerTime(EncodeBrokerTime(1) + "x", &ms));
}

class CoreClock : public ::testing::Test {
 protected:
  void SetUp() override {
    options_.dedup_window = 10min;
    core_ = std::make_unique<Core>(options_, link_, machine_);
    storage::StoreOptions store_options;
    store_options.dir = dir_.Sub("data");
    auto store = storage::BrokerStore::Open(store_options, &round_done_);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(store.value());
    core_->set_store(store_.get());
    topics_ = std::make_unique<TopicManager>(*core_);
    ASSERT_TRUE(topics_->Recover().ok());
  }

  // Seals and writes the open round as the server does.
  void Commit() {
    core_->StampBrokerTime();
    auto round = store_->WriteInline(core_->NowMs());
    ASSERT_TRUE(round->status().ok()) << round->status().ToString();
    round->Complete();
  }

  // Stores message `id` on topic "t" now, as a send would.
  void StoreMessage(const std::string& id) {
    auto topic = topics_->GetOrCreate("t", true, 1);
    ASSERT_TRUE(topic.ok()) << topic.status().ToString();
    storage::MessageView m;
    m.id = id;
    m.topic = "t";
    m.body = "x";
    m.born_ms = m.stored_ms = core_->NowMs();
    store_->AppendMessage((*topic)->id, 0, 0, m, /*indexed=*/true);
  }

  testing::TempDir dir_;
  BrokerOptions options_;
  FakeTimeSource machine_;
  NoLink link_;
  EventFd round_done_;
  std::unique_ptr<Core> core_;
  std::unique_ptr<storage::BrokerStore> store_;
  std::unique_ptr<TopicManager> topics_;
};

TEST_F(CoreClock, EveryRoundRecordsBrokerTime) {
  store_->PutMeta("probe", "x");
  machine_.Advance(2s);
  machine_.StepWall(-std::chrono::hours(1));
  Commit();
  auto value = store_->GetMeta(Core::kBrokerTimeMeta);
  ASSERT_TRUE(value.has_value());
  int64_t recorded = 0;
  ASSERT_TRUE(DecodeBrokerTime(*value, &recorded));
  EXPECT_EQ(recorded, core_->NowMs());
  EXPECT_GT(recorded, machine_.WallMs()) << "broker time, not the stepped wall clock";
}

TEST_F(CoreClock, DedupWindowCountsInBrokerTime) {
  DedupWindow dedup(*core_, *topics_);
  ASSERT_TRUE(dedup.Recover().ok());
  StoreMessage("m-1");
  dedup.Remember("m-1", {.stored_ms = core_->NowMs(), .topic = "t"});
  Commit();
  dedup.Settled("m-1");

  // The wall clock jumps a day ahead: the id is as young as it was.
  machine_.StepWall(std::chrono::hours(24));
  auto hit = dedup.Find("m-1");
  ASSERT_TRUE(hit.has_value());
  EXPECT_TRUE(hit->durable);
  dedup.Cleanup(core_->NowMs());
  EXPECT_TRUE(dedup.Find("m-1").has_value()) << "cleanup kept its filter";

  // Real time passes beyond the window: now it is out.
  machine_.Advance(options_.dedup_window + 2min);
  EXPECT_FALSE(dedup.Find("m-1").has_value());
}

}  // namespace
}  // namespace txmq::broker
