// The disk watermark on its own, with a fake free-space source: when it
// refuses, what the estimate between reads counts, the hysteresis, a
// failing source, and the threshold's rule.
#include "broker/src/disk_watermark.h"

#include <gtest/gtest.h>

#include <atomic>

#include "protocol/src/byte_size.h"
#include "tests/testutil/fake_free_space.h"

namespace txmq::broker {
namespace {

using txmq::testing::FakeFreeSpace;

constexpr uint64_t kMiB = 1ull << 20;

class DiskWatermarkTest : public ::testing::Test {
 protected:
  DiskWatermarkTest() {
    options_.data_dir = "/srv/txmq";
    options_.min_free_disk_bytes = 800 * kMiB;
    options_.free_space = fake_;
  }
  // A time after the next read is due.
  SteadyTime Later() { return now_ += DiskWatermark::kReadInterval; }

  std::shared_ptr<FakeFreeSpace> fake_ = std::make_shared<FakeFreeSpace>();
  BrokerOptions options_;
  SteadyTime now_ = SteadyClock::now();
};

TEST_F(DiskWatermarkTest, RefusesBelowTheThresholdNamingItTheFreeSpaceAndTheDirectory) {
  fake_->free = 2000 * kMiB;
  DiskWatermark disk(options_);
  disk.Start(now_, 0);
  EXPECT_TRUE(disk.CheckAccepts().ok());
  EXPECT_EQ(disk.free_bytes(), 2000 * kMiB);

  fake_->free = 799 * kMiB;
  disk.Tick(Later(), 0);
  ASSERT_TRUE(disk.low());
  Status s = disk.CheckAccepts();
  EXPECT_EQ(s.code(), StatusCode::kResourceExhausted) << s.ToString();
  EXPECT_TRUE(s.IsRetryable());
  for (const char* part :
       {"799.0 MiB free", "'/srv/txmq'", "--min-free-disk 800.0 MiB", "until 900.0 MiB are free"}) {
    EXPECT_NE(s.message().find(part), std::string::npos) << part << " in: " << s.message();
  }
  EXPECT_EQ(disk.refused(), 1u);
}

TEST_F(DiskWatermarkTest, ResumesOnlyAnEighthAboveTheThresholdSoItDoesNotFlap) {
  fake_->free = 700 * kMiB;
  DiskWatermark disk(options_);
  disk.Start(now_, 0);
  ASSERT_TRUE(disk.low()) << "a broker started on a full disk refuses from the start";
  fake_->free = 850 * kMiB;  // above the threshold, below threshold + 1/8
  disk.Tick(Later(), 0);
  EXPECT_TRUE(disk.low());
  fake_->free = 900 * kMiB;
  disk.Tick(Later(), 0);
  EXPECT_FALSE(disk.low());
  EXPECT_TRUE(disk.CheckAccepts().ok());
  fake_->free = 850 * kMiB;  // back down, still above the threshold
  disk.Tick(Later(), 0);
  EXPECT_FALSE(disk.low());
}

TEST_F(DiskWatermarkTest, BetweenReadsTheLogsNewSegmentsCountAtOnce) {
  fake_->free = 1000 * kMiB;
  DiskWatermark disk(options_);
  disk.Start(now_, 5000 * kMiB);
  const int reads = fake_->reads;
  // A fast producer: the log creates two 128 MiB segments before the next
  // read; the source (which a real disk would lower) is not asked again.
  disk.Tick(now_ + std::chrono::milliseconds(10), 5128 * kMiB);
  EXPECT_EQ(disk.free_bytes(), 872 * kMiB);
  EXPECT_FALSE(disk.low());
  disk.Tick(now_ + std::chrono::milliseconds(20), 5256 * kMiB);
  EXPECT_EQ(disk.free_bytes(), 744 * kMiB);
  EXPECT_TRUE(disk.low()) << "refused as soon as the segment was made, not a second later";
  EXPECT_EQ(fake_->reads, reads);
  // The next read is the truth again; with the segments' space gone the
  // disk says 744 MiB, and the broker stays low.
  fake_->free = 744 * kMiB;
  disk.Tick(Later(), 5256 * kMiB);
  EXPECT_TRUE(disk.low());
  EXPECT_EQ(fake_->reads, reads + 1);
}

TEST_F(DiskWatermarkTest, AFailingSourceKeepsWhatWasKnown) {
  fake_->free = 700 * kMiB;
  DiskWatermark disk(options_);
  disk.Start(now_, 0);
  ASSERT_TRUE(disk.low());
  fake_->fail = true;
  disk.Tick(Later(), 0);
  EXPECT_TRUE(disk.low());
  EXPECT_EQ(disk.free_bytes(), 700 * kMiB);
  fake_->fail = false;
  fake_->free = 5000 * kMiB;
  disk.Tick(Later(), 0);
  EXPECT_FALSE(disk.low());
}

TEST_F(DiskWatermarkTest, ZeroTurnsTheCheckOff) {
  options_.min_free_disk_bytes = 0;
  fake_->free = 0;
  DiskWatermark disk(options_);
  disk.Start(now_, 0);
  EXPECT_FALSE(disk.enabled());
  EXPECT_FALSE(disk.low());
  EXPECT_TRUE(disk.CheckAccepts().ok());
}

TEST(MinFreeDisk, DefaultsToTheRoomTheBrokerNeedsAndRefusesLess) {
  BrokerOptions o;
  // 2 x 128 MiB segments + 4 x 32 MiB memtables + 25 x 8 MiB table files.
  EXPECT_EQ(MinFreeDiskRoom(o), 584 * kMiB);
  EXPECT_EQ(EffectiveMinFreeDisk(o), 584 * kMiB);
  o.segment_bytes = 8 * kMiB;
  o.write_buffer_bytes = kMiB;
  o.table_file_bytes = kMiB;
  o.max_message_bytes = kMiB;
  EXPECT_EQ(EffectiveMinFreeDisk(o), 45 * kMiB) << "follows the sizes it is made of";

  o.min_free_disk_bytes = 44 * kMiB;
  Status s = ValidateBrokerOptions(o);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("min_free_disk_bytes (--min-free-disk) = 44.0 MiB"), std::string::npos)
      << s.message();
  EXPECT_NE(s.message().find("at least 45.0 MiB"), std::string::npos) << s.message();
  o.min_free_disk_bytes = 45 * kMiB;
  EXPECT_TRUE(ValidateBrokerOptions(o).ok());
  o.min_free_disk_bytes = 0;
  EXPECT_TRUE(ValidateBrokerOptions(o).ok()) << "0 is off";
}

TEST(ByteSize, ReadsBinaryAndDecimalUnitsAndRefusesTheRest) {
  EXPECT_EQ(ParseByteSize("1GiB"), 1ull << 30);
  EXPECT_EQ(ParseByteSize("600MiB"), 600 * kMiB);
  EXPECT_EQ(ParseByteSize("1.5 gib"), 3ull << 29);
  EXPECT_EQ(ParseByteSize("2GB"), 2'000'000'000u);
  EXPECT_EQ(ParseByteSize("4096"), 4096u);
  EXPECT_EQ(ParseByteSize("0"), 0u);
  for (const char* bad : {"", "GiB", "1 parsec", "-1GiB", "1..2MiB", "99999999999TiB"}) {
    EXPECT_FALSE(ParseByteSize(bad).has_value()) << bad;
  }
  EXPECT_EQ(FormatBytes(512), "512 B");
  EXPECT_EQ(FormatBytes(40 * kMiB), "40.0 MiB");
  EXPECT_EQ(FormatBytes(1536ull << 20), "1.5 GiB");
}

}  // namespace
}  // namespace txmq::broker
