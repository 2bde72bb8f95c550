// The commit log and the page cache: only the log's tail stays cached,
// whatever wrote or read the rest (appends, the walk at start, a reader
// far behind), and a drop leaves no folio behind.
#include <gtest/gtest.h>
#include <sys/uio.h>

#include <string>
#include <vector>

#include "storage/src/commit_log.h"
#include "tests/testutil/testutil.h"
#include "tests/unit/commit_log_helpers.h"

namespace txmq::storage {
namespace {

using testing::TempDir;
using testlog::Append;
using testlog::OpenLog;
using testlog::Options;
using testlog::Replayed;

// The page cache keeps the log's tail (what consumers read) and lets go
// of the rest once it is durable, also of what the recovery scan read:
// a log much larger than memory does not crowd it, and writes reuse pages.
// A drop leaves a folio (the page cache's unit, up to 2 MiB) across its end
// cached: what tests of the cache allow before the end of a drop.
constexpr uint64_t kFolio = 2 << 20;

// A log of one 16 MiB segment that keeps 1 MiB cached, and its 64 KiB
// entries' payload.
struct CachedTailLog {
  explicit CachedTailLog(const TempDir& dir)
      : options(Options(dir, FileSystem::Default(), 16 << 20)),
        segment(options.dir + "/" + SegmentFileName(0)) {
    options.cached_tail_bytes = 1 << 20;
  }
  LogOptions options;
  const std::string segment;
  const std::string payload = std::string(64 << 10, 'p');
};

TEST(CommitLog, ThePageCacheKeepsOnlyTheTailOfTheLog) {
  TempDir dir;
  Replayed r;
  CachedTailLog t(dir);
  const LogOptions& o = t.options;
  const std::string& payload = t.payload;
  const std::string& segment = t.segment;
  uint64_t first = 0, end = 0;
  {
    auto log = OpenLog(o, &r);
    ASSERT_TRUE(log.ok()) << log.status().ToString();
    first = Append(**log, payload).position;
    for (int i = 0; i < 159; ++i) Append(**log, payload);
    end = (*log)->written_end().position;
    ASSERT_GT(end, 8u << 20);
    // Dropped in steps of 1 MiB: everything 2 MiB before the end is gone.
    EXPECT_EQ(testing::CachedPages(segment, 0, end - (2 << 20) - kFolio), 0);
    const uint64_t recent = (end - (512 << 10)) / 4096 * 4096;
    EXPECT_EQ(testing::CachedPages(segment, recent, 256 << 10), (256 << 10) / 4096);
    auto old_entry = (*log)->ReadEntry(first);
    ASSERT_TRUE(old_entry.ok()) << old_entry.status().ToString();
    EXPECT_EQ(old_entry->payload, payload) << "read back from the disk";
  }
  auto reopened = OpenLog(o, &r);  // scans (reads) every entry
  ASSERT_TRUE(reopened.ok()) << reopened.status().ToString();
  EXPECT_EQ(r.payloads.size(), 160u);
  EXPECT_EQ(testing::CachedPages(segment, 0, end - (2 << 20) - kFolio), 0);
}

TEST(CommitLog, WhatAReaderFarBehindBroughtBackLeavesTheCacheAgain) {
  TempDir dir;
  Replayed r;
  CachedTailLog t(dir);
  const std::string& payload = t.payload;
  const std::string& segment = t.segment;
  auto log = OpenLog(t.options, &r);
  ASSERT_TRUE(log.ok()) << log.status().ToString();
  std::vector<uint64_t> positions;
  for (int i = 0; i < 160; ++i) positions.push_back(Append(**log, payload).position);
  const uint64_t behind = positions[80];  // everything before it left the cache
  ASSERT_EQ(testing::CachedPages(segment, 0, behind), 0);

  // A consumer catching up reads the first 80 entries (5 MiB) back in.
  uint64_t sum = 0;
  for (int i = 0; i < 80; ++i) {
    auto e = (*log)->ReadEntry(positions[i]);
    ASSERT_TRUE(e.ok()) << e.status().ToString();
    for (char c : e->payload) sum += static_cast<unsigned char>(c);
    (*log)->NoteRead(positions[i], e->end() - positions[i]);
  }
  EXPECT_EQ(sum, 80u * payload.size() * 'p');
  EXPECT_GT(testing::CachedPages(segment, 0, behind), 0) << "read back from the disk";

  Append(**log, payload);  // the next sync drops them again
  EXPECT_EQ(testing::CachedPages(segment, 0, behind - kFolio), 0);
  EXPECT_GT(testing::CachedPages(segment, positions[158], 4096), 0) << "the tail stays";
}

// Read from the disk, a file comes into the page cache in folios of up to
// 2 MiB; the kernel drops only folios wholly inside a range. Ranges that
// follow each other at odd places must still leave nothing behind.
TEST(SegmentFile, DroppingRangeAfterRangeLeavesNoFolioBehind) {
  TempDir dir;
  const std::string path = dir.Sub("file");
  const uint64_t size = 32 << 20;
  {
    auto file = FileSystem::Default()->Open(path, size);
    ASSERT_TRUE(file.ok()) << file.status().ToString();
    const std::string chunk(1 << 20, 'x');
    for (uint64_t at = 0; at < size; at += chunk.size()) {
      const iovec v{const_cast<char*>(chunk.data()), chunk.size()};
      ASSERT_TRUE((*file)->WriteAt(at, {&v, 1}).ok());
    }
    ASSERT_TRUE((*file)->Sync().ok());
  }
  ASSERT_TRUE(testing::EvictFromPageCache(path));
  auto file = FileSystem::Default()->Open(path, 0);
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  const std::string_view bytes = (*file)->mapped();
  uint64_t dropped = 0, sum = 0;
  for (uint64_t at = 0; at < size; at += 4096) {
    sum += static_cast<unsigned char>(bytes[at]);  // read front to back
    if (at >= dropped + (1 << 20) + 12288) {       // steps of a little over 1 MiB
      (*file)->DropCache(dropped, at - dropped);
      dropped = at;
    }
  }
  EXPECT_EQ(sum, size / 4096 * 'x');
  EXPECT_EQ(testing::CachedPages(path, 0, dropped - (2 << 20)), 0);
}

TEST(CommitLog, AWalkOverAColdLogDropsWhatItReadAsItGoes) {
  TempDir dir;
  CachedTailLog t(dir);
  LogOptions& o = t.options;
  o.verify_all = true;
  const std::string& payload = t.payload;
  const std::string& segment = t.segment;
  {
    Replayed r;
    auto log = OpenLog(o, &r);
    ASSERT_TRUE(log.ok()) << log.status().ToString();
    for (int i = 0; i < 192; ++i) Append(**log, payload);
  }
  // Read from the disk, the log comes into the cache through readahead, in
  // folios of up to 2 MiB.
  ASSERT_TRUE(testing::EvictFromPageCache(segment));
  int replayed = 0;
  int64_t cached_behind_the_walk = -1;
  auto reopened = CommitLog::Open(o, {}, [&](const LogEntry& e) {
    if (++replayed == 192) {
      cached_behind_the_walk = testing::CachedPages(segment, 0, e.position - (4 << 20));
    }
    return Status::OK();
  });
  ASSERT_TRUE(reopened.ok()) << reopened.status().ToString();
  ASSERT_EQ(replayed, 192);
  EXPECT_EQ(cached_behind_the_walk, 0) << "pages the walk had read and left behind";
  const uint64_t end = (*reopened)->written_end().position;
  EXPECT_EQ(testing::CachedPages(segment, 0, end - (2 << 20) - kFolio), 0);
}

// The end-of-log check looks for a later entry in the rest of the last
// segment; what was never written there reads as zeros and is not read.
TEST(CommitLog, OpeningALogLeavesTheUnwrittenRestOfItsSegmentUnread) {
  TempDir dir;
  CachedTailLog t(dir);
  LogOptions& o = t.options;
  o.segment_bytes = 64 << 20;
  o.verify_all = true;
  {
    Replayed r;
    auto log = OpenLog(o, &r);
    ASSERT_TRUE(log.ok()) << log.status().ToString();
    for (int i = 0; i < 8; ++i) Append(**log, t.payload);
  }
  ASSERT_TRUE(testing::EvictFromPageCache(t.segment));
  Replayed r;
  auto reopened = OpenLog(o, &r);
  ASSERT_TRUE(reopened.ok()) << reopened.status().ToString();
  EXPECT_EQ(r.payloads.size(), 8u);
  // (Readahead past the end may bring in a few MiB; not the other 50.)
  EXPECT_EQ(testing::CachedPages(t.segment, 16 << 20, 48 << 20), 0);
}

}  // namespace
}  // namespace txmq::storage
