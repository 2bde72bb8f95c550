// Broker time with a fake machine clock: wall-clock steps change nothing,
// it continues from what a data directory recorded, every commit round
// records it, and the dedup window counts in it.
#include <gtest/gtest.h>

#include <memory>

#include "broker/src/clock.h"
#include "broker/src/core.h"
#include "broker/src/dedup.h"
#include "storage/src/db.h"
#include "storage/src/keys.h"
#include "tests/testutil/testutil.h"

namespace txmq::broker {
namespace {

using namespace std::chrono_literals;

// A machine whose clocks only move when told to.
class FakeTimeSource final : public TimeSource {
 public:
  int64_t WallMs() const override { return wall_ms_; }
  SteadyTime SteadyNow() const override { return steady_; }

  // Time passes: both clocks move.
  void Advance(std::chrono::milliseconds d) {
    wall_ms_ += d.count();
    steady_ += d;
  }
  // Someone sets the wall clock (NTP step, date -s): only it moves.
  void StepWall(std::chrono::milliseconds d) { wall_ms_ += d.count(); }

 private:
  int64_t wall_ms_ = 1'700'000'000'000;
  SteadyTime steady_ = SteadyTime(std::chrono::hours(1000));
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
    auto db = storage::Db::Open(dir_.Sub("db"), storage::DbOptions{});
    ASSERT_TRUE(db.ok()) << db.status().ToString();
    db_ = std::move(db.value());
    core_ = std::make_unique<Core>(options_, db_->get(), nullptr, machine_);
  }

  // Writes the open round as the storage thread would.
  void Commit() {
    auto round = core_->TakeRound();
    ASSERT_TRUE((*db_)->Write(leveldb::WriteOptions(), &round->batch).ok());
    for (auto& done : round->on_durable) done(Status::OK());
  }

  size_t DedupEntries() {
    std::unique_ptr<leveldb::Iterator> it((*db_)->NewIterator(leveldb::ReadOptions()));
    const std::string prefix(1, storage::keys::kDedup);
    size_t n = 0;
    for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) ++n;
    return n;
  }

  testing::TempDir dir_;
  BrokerOptions options_;
  FakeTimeSource machine_;
  std::unique_ptr<storage::Db> db_;
  std::unique_ptr<Core> core_;
};

TEST_F(CoreClock, EveryRoundRecordsBrokerTime) {
  core_->batch().Put("probe", "x");
  machine_.Advance(2s);
  machine_.StepWall(-std::chrono::hours(1));
  Commit();
  std::string value;
  ASSERT_TRUE((*db_)->Get(leveldb::ReadOptions(), storage::keys::BrokerTime(), &value).ok());
  int64_t recorded = 0;
  ASSERT_TRUE(DecodeBrokerTime(value, &recorded));
  EXPECT_EQ(recorded, core_->NowMs());
  EXPECT_GT(recorded, machine_.WallMs()) << "broker time, not the stepped wall clock";
}

TEST_F(CoreClock, DedupWindowCountsInBrokerTime) {
  DedupWindow dedup(*core_);
  ASSERT_TRUE(dedup.Recover().ok());
  dedup.Remember("m-1", {.stored_ms = core_->NowMs(), .topic = "t"});
  Commit();
  dedup.Settled("m-1");

  // The wall clock jumps a day ahead: the id is as young as it was.
  machine_.StepWall(std::chrono::hours(24));
  EXPECT_TRUE(dedup.Find("m-1").has_value());
  EXPECT_FALSE(dedup.Cleanup(core_->NowMs(), 1000));
  Commit();
  EXPECT_EQ(DedupEntries(), 1u) << "cleanup kept it";
  EXPECT_TRUE(dedup.Find("m-1").has_value());

  // Real time passes beyond the window: now it may go.
  machine_.Advance(options_.dedup_window + 2min);
  EXPECT_FALSE(dedup.Find("m-1").has_value());
  dedup.Cleanup(core_->NowMs(), 1000);
  Commit();
  EXPECT_EQ(DedupEntries(), 0u) << "cleanup deleted it";
}

}  // namespace
}  // namespace txmq::broker
