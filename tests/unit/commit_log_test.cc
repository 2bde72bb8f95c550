// The commit log alone: appends, rolls, recovery scans, torn tails after a
// power loss (FaultFileSystem), damage in the middle, segment deletion.
#include "storage/src/commit_log.h"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <vector>

#include "storage/src/crc32c.h"
#include "tests/testutil/fault_fs.h"
#include "tests/testutil/testutil.h"
#include "tests/unit/commit_log_helpers.h"

namespace txmq::storage {
namespace {

using testing::FaultFileSystem;
using testing::TempDir;
using testlog::Append;
using testlog::OpenLog;
using testlog::Options;
using testlog::Replayed;

TEST(Crc32c, KnownValuesAndExtension) {
  // RFC 3720 B.4 test vectors.
  std::string zeros(32, '\0'), ones(32, '\xff');
  EXPECT_EQ(crc32c::Value(zeros), 0x8a9136aau);
  EXPECT_EQ(crc32c::Value(ones), 0x62a8ab43u);
  EXPECT_EQ(crc32c::Value("123456789"), 0xe3069283u);
  const std::string s = "hello, commit log";
  EXPECT_EQ(crc32c::Extend(crc32c::Value(s.substr(0, 5)), s.data() + 5, s.size() - 5),
            crc32c::Value(s));
  EXPECT_EQ(crc32c::Unmask(crc32c::Mask(0x12345678u)), 0x12345678u);
}

TEST(CommitLog, AppendReopenReplaysEverythingAndContinuesTheChain) {
  TempDir dir;
  Replayed r;
  std::vector<uint64_t> positions;
  {
    auto log = OpenLog(Options(dir, FileSystem::Default()), &r);
    ASSERT_TRUE(log.ok()) << log.status().ToString();
    for (int i = 0; i < 100; ++i)
      positions.push_back(Append(**log, "entry-" + std::to_string(i)).position);
    auto view = (*log)->ReadEntry(positions[42]);
    ASSERT_TRUE(view.ok());
    EXPECT_EQ(view->payload, "entry-42");
    EXPECT_EQ(view->header.index, 43u);
  }
  ASSERT_TRUE(r.payloads.empty());
  auto log = OpenLog(Options(dir, FileSystem::Default()), &r);
  ASSERT_TRUE(log.ok()) << log.status().ToString();
  ASSERT_EQ(r.payloads.size(), 100u);
  for (int i = 0; i < 100; ++i) {
    EXPECT_EQ(r.payloads[i], "entry-" + std::to_string(i));
    EXPECT_EQ(r.indexes[i], static_cast<uint64_t>(i + 1));
    EXPECT_EQ(r.positions[i], positions[i]);
  }
  PendingEntry next = Append(**log, "after reopen");
  EXPECT_EQ(next.index, 101u);
  Replayed again;
  log->reset();
  ASSERT_TRUE(OpenLog(Options(dir, FileSystem::Default()), &again).ok());
  ASSERT_EQ(again.payloads.size(), 101u);
  EXPECT_EQ(again.payloads.back(), "after reopen");
}

TEST(CommitLog, ReplayStartsAtTheCursorItIsGiven) {
  TempDir dir;
  Replayed r;
  LogCursor after_ten;
  {
    auto log = OpenLog(Options(dir, FileSystem::Default()), &r);
    ASSERT_TRUE(log.ok());
    for (int i = 0; i < 20; ++i) {
      PendingEntry e = Append(**log, "e" + std::to_string(i));
      if (i == 9) after_ten = (*log)->written_end();
    }
  }
  auto log = OpenLog(Options(dir, FileSystem::Default()), &r, after_ten);
  ASSERT_TRUE(log.ok()) << log.status().ToString();
  ASSERT_EQ(r.payloads.size(), 10u);
  EXPECT_EQ(r.payloads.front(), "e10");
  EXPECT_EQ(r.indexes.front(), 11u);
}

TEST(CommitLog, EntriesRollToTheNextSegmentAndNeverStraddle) {
  TempDir dir;
  Replayed r;
  const uint64_t segment = 1 << 16;
  std::vector<std::pair<uint64_t, std::string>> written;
  {
    auto log = OpenLog(Options(dir, FileSystem::Default(), segment), &r);
    ASSERT_TRUE(log.ok());
    for (int i = 0; i < 200; ++i) {
      const std::string payload(1000 + i * 7, static_cast<char>('a' + i % 26));
      PendingEntry e = Append(**log, payload);
      EXPECT_EQ(e.position / segment, (e.position + e.bytes() - 1) / segment) << "straddles";
      written.emplace_back(e.position, payload);
      ASSERT_TRUE((*log)->PrepareNextSegment().ok());
    }
    EXPECT_GT((*log)->Segments().size(), 3u);
    for (const auto& [position, payload] : written) {
      auto e = (*log)->ReadEntry(position);
      ASSERT_TRUE(e.ok()) << e.status().ToString();
      EXPECT_EQ(e->payload, payload);
    }
  }
  auto log = OpenLog(Options(dir, FileSystem::Default(), segment), &r);
  ASSERT_TRUE(log.ok()) << log.status().ToString();
  ASSERT_EQ(r.payloads.size(), written.size());
  EXPECT_EQ(r.payloads.back(), written.back().second);
}

// Positions are a function of the entries' sizes alone, also across a
// reopen: a replica's store reopened after a restart must place what it
// applies next where the leader's store (never closed) did. A segment
// prepared ahead and never written must not move the end there.
TEST(CommitLog, AReopenedLogContinuesInTheSegmentItWasWritingNotThePreparedOne) {
  TempDir dir;
  const uint64_t segment = 1 << 16;
  Replayed r;
  LogCursor end;
  {
    auto log = OpenLog(Options(dir, FileSystem::Default(), segment), &r);
    ASSERT_TRUE(log.ok());
    while ((*log)->written_end().position < segment * 3 / 4) Append(**log, std::string(900, 'a'));
    ASSERT_TRUE((*log)->PrepareNextSegment().ok());
    ASSERT_EQ((*log)->Segments().size(), 2u) << "the next segment should be prepared";
    end = (*log)->written_end();
  }
  auto log = OpenLog(Options(dir, FileSystem::Default(), segment), &r);
  ASSERT_TRUE(log.ok()) << log.status().ToString();
  EXPECT_EQ((*log)->placed_end(), end);
  // The next entries go where a log never closed puts them.
  PendingEntry next = Append(**log, std::string(900, 'b'));
  EXPECT_EQ(next.position, end.position);
  EXPECT_EQ(next.index, end.index);
}

TEST(CommitLog, AnEntryLargerThanASegmentIsRefused) {
  TempDir dir;
  Replayed r;
  auto log = OpenLog(Options(dir, FileSystem::Default(), 1 << 16), &r);
  ASSERT_TRUE(log.ok());
  std::string big(1 << 16, 'x');
  PendingEntry e;
  e.Add(big.data(), big.size());
  EXPECT_EQ((*log)->Place(e).code(), StatusCode::kTooLarge);
}

TEST(CommitLog, PowerLossDropsTheUnsyncedTailAndTheLogContinuesThere) {
  TempDir dir;
  FaultFileSystem fs;
  Replayed r;
  {
    auto log = OpenLog(Options(dir, &fs), &r);
    ASSERT_TRUE(log.ok());
    for (int i = 0; i < 10; ++i) Append(**log, "synced-" + std::to_string(i));
    Append(**log, std::string(5000, 'u'), /*sync=*/false);  // written, never synced
    EXPECT_GT(fs.unsynced_bytes(), 0u);
    fs.PowerOff();
    EXPECT_FALSE((*log)->Sync().ok());
  }
  fs.DropUnsynced();
  FaultFileSystem after;
  auto log = OpenLog(Options(dir, &after), &r);
  ASSERT_TRUE(log.ok()) << log.status().ToString();
  ASSERT_EQ(r.payloads.size(), 10u);
  EXPECT_EQ(r.payloads.back(), "synced-9");
  PendingEntry e = Append(**log, "new");
  EXPECT_EQ(e.index, 11u);
  Replayed again;
  log->reset();
  ASSERT_TRUE(OpenLog(Options(dir, &after), &again).ok());
  ASSERT_EQ(again.payloads.size(), 11u);
  EXPECT_EQ(again.payloads.back(), "new");
}

TEST(CommitLog, TornPagesNeverYieldAPartialEntry) {
  // Many seeds: each power loss keeps a random subset of the unsynced
  // pages of the last entry. The log ends before it or contains all of it.
  for (uint64_t seed = 1; seed <= 24; ++seed) {
    TempDir dir;
    FaultFileSystem fs;
    fs.Torn(seed);
    Replayed r;
    const std::string last(20000 + seed * 13, static_cast<char>('A' + seed % 26));
    {
      auto log = OpenLog(Options(dir, &fs, 1 << 20), &r);
      ASSERT_TRUE(log.ok());
      for (int i = 0; i < 5; ++i) Append(**log, "ok-" + std::to_string(i));
      Append(**log, last, /*sync=*/false);
      fs.PowerOff();
    }
    fs.DropUnsynced();
    auto log = OpenLog(Options(dir, FileSystem::Default(), 1 << 20), &r);
    ASSERT_TRUE(log.ok()) << "seed " << seed << ": " << log.status().ToString();
    ASSERT_GE(r.payloads.size(), 5u) << "seed " << seed;
    ASSERT_LE(r.payloads.size(), 6u) << "seed " << seed;
    if (r.payloads.size() == 6) {
      EXPECT_EQ(r.payloads.back(), last) << "seed " << seed;
    }
  }
}

TEST(CommitLog, DamageBeforeTheEndIsRefusedNamingTheSegment) {
  TempDir dir;
  Replayed r;
  std::vector<PendingEntry> entries;
  std::string first_segment;
  {
    auto log = OpenLog(Options(dir, FileSystem::Default()), &r);
    ASSERT_TRUE(log.ok());
    for (int i = 0; i < 5; ++i) entries.push_back(Append(**log, std::string(100, 'a' + i)));
  }
  // Flip one payload byte of entry 2 (of 5, all synced): bit rot.
  const std::string path = dir.Sub("log") + "/00000000000000000000.seg";
  const int fd = ::open(path.c_str(), O_RDWR);
  ASSERT_GE(fd, 0);
  char c = 'Z';
  ASSERT_EQ(::pwrite(fd, &c, 1, static_cast<off_t>(entries[1].position + 60)), 1);
  ::close(fd);
  auto log = OpenLog(Options(dir, FileSystem::Default()), &r);
  ASSERT_FALSE(log.ok());
  EXPECT_EQ(log.status().code(), StatusCode::kCorruption);
  EXPECT_NE(log.status().message().find(path), std::string::npos) << log.status().message();
  EXPECT_NE(log.status().message().find("entry 2"), std::string::npos) << log.status().message();
}

TEST(CommitLog, EntriesWrittenBeforeTheLastOneWasSyncedMayBeTornTogether) {
  // flush async: entries are written without a sync in between, so a power
  // loss may tear several; the log then ends at the first damaged one.
  TempDir dir;
  Replayed r;
  std::vector<PendingEntry> entries;
  {
    auto log = OpenLog(Options(dir, FileSystem::Default()), &r);
    ASSERT_TRUE(log.ok());
    for (int i = 0; i < 5; ++i) {
      entries.push_back(Append(**log, std::string(2000, 'a' + i), /*sync=*/i < 2));
    }
    ASSERT_TRUE((*log)->Sync().ok());
  }
  // The power went while entries 4 and 5 were in flight: from the middle
  // of entry 4 on nothing reached the disk (the preallocated zeros).
  const std::string path = dir.Sub("log") + "/00000000000000000000.seg";
  const int fd = ::open(path.c_str(), O_RDWR);
  const std::string zeros(6000, '\0');
  ASSERT_EQ(::pwrite(fd, zeros.data(), zeros.size(), static_cast<off_t>(entries[3].position + 600)),
            static_cast<ssize_t>(zeros.size()));
  ::close(fd);
  auto log = OpenLog(Options(dir, FileSystem::Default()), &r);
  ASSERT_TRUE(log.ok()) << log.status().ToString();
  EXPECT_EQ(r.payloads.size(), 3u);
}

TEST(CommitLog, StaleBytesAfterATruncationNeverReadAsTheNextEntry) {
  // e1..e4 on disk, e3 and e4 never synced; recovery restarts from e3 as
  // if e3 had been torn (the cursor after e2 with e3 rewritten): the old e4
  // still sits further on but chains to the old e3, so it must not be
  // replayed. (e4 does not say "everything before me was synced", so it
  // does not make the torn e3 damage either.)
  TempDir dir;
  Replayed r;
  LogCursor after_two;
  {
    auto log = OpenLog(Options(dir, FileSystem::Default()), &r);
    ASSERT_TRUE(log.ok());
    Append(**log, "e1");
    Append(**log, "e2");
    after_two = (*log)->written_end();
    Append(**log, "e3-old", /*sync=*/false);
    Append(**log, "e4-old", /*sync=*/false);
  }
  {
    // Open without replaying e3/e4 (cursor beyond them is not possible), so
    // overwrite e3 with a different entry of the same length.
    auto log = OpenLog(Options(dir, FileSystem::Default()), &r, after_two);
    ASSERT_TRUE(log.ok());
  }
  r = {};
  LogOptions o = Options(dir, FileSystem::Default());
  auto log = CommitLog::Open(o, after_two, [&](const LogEntry& e) {
    r.payloads.emplace_back(e.payload);
    return Status::OK();
  });
  ASSERT_TRUE(log.ok());
  ASSERT_EQ(r.payloads.size(), 2u);  // e3-old and e4-old are a valid chain
  // Now rewrite from after_two: the log must forget e3-old and e4-old.
  log->reset();
  {
    // Simulate the torn e3: zero its first header byte, so the scan stops.
    const std::string path = dir.Sub("log") + "/00000000000000000000.seg";
    const int fd = ::open(path.c_str(), O_RDWR);
    char zero = 0;
    ASSERT_EQ(::pwrite(fd, &zero, 1, static_cast<off_t>(after_two.position)), 1);
    ::close(fd);
  }
  r = {};
  auto torn = OpenLog(o, &r, after_two);
  ASSERT_TRUE(torn.ok()) << torn.status().ToString();
  EXPECT_TRUE(r.payloads.empty());
  Append(**torn, "e3-new");  // same length as "e3-old": e4-old sits right after it
  torn->reset();
  r = {};
  ASSERT_TRUE(OpenLog(o, &r, after_two).ok());
  ASSERT_EQ(r.payloads.size(), 1u);
  EXPECT_EQ(r.payloads[0], "e3-new");
}

// The bytes of a torn entry cut at a start are zeroed there (and synced):
// segment space is written once from zeros, which is how a later entry
// torn by a second power loss is told from a damaged one (its unwritten
// sectors read as zeros). Left in place, the old entry's bytes filled the
// new entry's unwritten sector, and the start refused a torn tail as
// damage.
TEST(CommitLog, TheBytesOfATornTailAreZeroedSoAnEntryTornOverThemIsTornNotDamage) {
  TempDir dir;
  Replayed r;
  const std::string path = dir.Sub("log") + "/00000000000000000000.seg";
  LogCursor after_one;
  {
    auto log = OpenLog(Options(dir, FileSystem::Default()), &r);
    ASSERT_TRUE(log.ok());
    Append(**log, "e1");
    after_one = (*log)->written_end();
    Append(**log, std::string(3000, 'x'), /*sync=*/false);
  }
  // Power loss 1 tore it: its first sector never reached the disk.
  const int fd = ::open(path.c_str(), O_RDWR);
  ASSERT_GE(fd, 0);
  const std::string zeros(512, '\0');
  ASSERT_EQ(::pwrite(fd, zeros.data(), 512, static_cast<off_t>(after_one.position)), 512);
  r = {};
  {
    auto log = OpenLog(Options(dir, FileSystem::Default()), &r);
    ASSERT_TRUE(log.ok()) << log.status().ToString();
    ASSERT_EQ(r.payloads.size(), 1u);
    ASSERT_TRUE((*log)->ZeroAfterEnd().ok());  // as the store does once its checks passed
    // What the disk holds at a sector the next entry will cover whole.
    const off_t sector = static_cast<off_t>((after_one.position + 512 + 511) / 512 * 512);
    std::string before(512, '?');
    ASSERT_EQ(::pread(fd, before.data(), 512, sector), 512);
    Append(**log, std::string(2000, 'y'), /*sync=*/false);
    // Power loss 2: the entry's other sectors reached the disk, that one not.
    ASSERT_EQ(::pwrite(fd, before.data(), 512, sector), 512);
  }
  ::close(fd);
  r = {};
  auto log = OpenLog(Options(dir, FileSystem::Default()), &r);
  ASSERT_TRUE(log.ok()) << "a torn tail was taken for damage: " << log.status().ToString();
  EXPECT_EQ(r.payloads.size(), 1u);
}

TEST(CommitLog, DeleteBeforeRemovesWholeSegmentsOnly) {
  TempDir dir;
  Replayed r;
  auto log = OpenLog(Options(dir, FileSystem::Default(), 1 << 16), &r);
  ASSERT_TRUE(log.ok());
  std::vector<PendingEntry> entries;
  for (int i = 0; i < 300; ++i) entries.push_back(Append(**log, std::string(900, 'x')));
  const auto segments = (*log)->Segments();
  ASSERT_GE(segments.size(), 4u);
  // A position inside the third segment: the first two go, the third stays.
  const uint64_t cut = segments[2].base + 10;
  auto freed = (*log)->DeleteBefore(cut);
  ASSERT_TRUE(freed.ok());
  EXPECT_EQ(*freed, segments[0].size + segments[1].size);
  EXPECT_EQ((*log)->start(), segments[2].base);
  EXPECT_EQ((*log)->ReadEntry(entries[0].position).status().code(), StatusCode::kNotFound);
  EXPECT_TRUE((*log)->ReadEntry(entries.back().position).ok());
  EXPECT_FALSE(FileSystem::Default()->Exists(dir.Sub("log") + "/00000000000000000000.seg"));
}

TEST(CommitLog, RecoveryFromAGoneSegmentIsDamage) {
  TempDir dir;
  Replayed r;
  LogCursor late;
  {
    auto log = OpenLog(Options(dir, FileSystem::Default(), 1 << 16), &r);
    ASSERT_TRUE(log.ok());
    for (int i = 0; i < 100; ++i) Append(**log, std::string(900, 'x'));
    late = (*log)->written_end();
  }
  ::unlink((dir.Sub("log") + "/00000000000000000000.seg").c_str());
  r = {};
  LogCursor early;  // position 0: its segment is gone
  auto log = OpenLog(Options(dir, FileSystem::Default(), 1 << 16), &r, early);
  EXPECT_EQ(log.status().code(), StatusCode::kCorruption);
  EXPECT_NE(log.status().message().find("no segment file holds log bytes 0 to 65536"),
            std::string::npos)
      << log.status().message();
  r = {};
  EXPECT_TRUE(OpenLog(Options(dir, FileSystem::Default(), 1 << 16), &r, late).ok());
}

// Flips `n` bytes at `offset` of the first segment file.
void Flip(const TempDir& dir, uint64_t offset, size_t n = 1,
          const std::string& segment = "00000000000000000000.seg") {
  const std::string path = dir.Sub("log") + "/" + segment;
  const int fd = ::open(path.c_str(), O_RDWR);
  ASSERT_GE(fd, 0);
  std::string bytes(n, '\0');
  ASSERT_EQ(::pread(fd, bytes.data(), n, static_cast<off_t>(offset)), static_cast<ssize_t>(n));
  for (char& c : bytes) c = static_cast<char>(~c);
  ASSERT_EQ(::pwrite(fd, bytes.data(), n, static_cast<off_t>(offset)), static_cast<ssize_t>(n));
  ::close(fd);
}

// Zeroes `n` bytes at `offset` of the first segment file: sectors a torn
// write never wrote.
void Zero(const TempDir& dir, uint64_t offset, size_t n) {
  const std::string path = dir.Sub("log") + "/00000000000000000000.seg";
  const int fd = ::open(path.c_str(), O_RDWR);
  ASSERT_GE(fd, 0);
  const std::string zeros(n, '\0');
  ASSERT_EQ(::pwrite(fd, zeros.data(), n, static_cast<off_t>(offset)), static_cast<ssize_t>(n));
  ::close(fd);
}

TEST(CommitLog, DamageToTheLastEntryBeforeTheCursorIsRefused) {
  // A clean stop: the checkpoint cursor is after the last entry, so that
  // entry was durable and a damaged one is not a torn tail.
  TempDir dir;
  Replayed r;
  std::vector<PendingEntry> entries;
  LogCursor end;
  {
    auto log = OpenLog(Options(dir, FileSystem::Default()), &r);
    ASSERT_TRUE(log.ok());
    for (int i = 0; i < 5; ++i) entries.push_back(Append(**log, std::string(2000, 'a' + i)));
    end = (*log)->written_end();
  }
  Flip(dir, entries[4].position + 70);
  auto log = OpenLog(Options(dir, FileSystem::Default()), &r, end);
  ASSERT_EQ(log.status().code(), StatusCode::kCorruption) << log.status().ToString();
  EXPECT_NE(log.status().message().find("entry 5"), std::string::npos) << log.status().message();
  EXPECT_NE(log.status().message().find("byte " + std::to_string(entries[4].position)),
            std::string::npos)
      << log.status().message();
  // From an older cursor, the same entry with sectors that never reached
  // the disk is the torn tail of a crash.
  Zero(dir, entries[4].position + 600, 1200);
  r = {};
  LogCursor after_four{entries[4].position, 5, entries[3].crc};
  ASSERT_TRUE(OpenLog(Options(dir, FileSystem::Default()), &r, after_four).ok());
  EXPECT_EQ(r.payloads.size(), 0u);
}

TEST(CommitLog, ALastEntryWrittenWholeWithABadChecksumIsDamageNotATornTail) {
  // kill -9 after the last round was acknowledged (no checkpoint covers
  // it), then bit rot in its middle: every sector of it was written, so no
  // crash tore it, and it was acknowledged. Cutting it as a torn tail would
  // lose acknowledged messages silently.
  TempDir dir;
  Replayed r;
  std::vector<PendingEntry> entries;
  {
    auto log = OpenLog(Options(dir, FileSystem::Default()), &r);
    ASSERT_TRUE(log.ok());
    for (int i = 0; i < 5; ++i) entries.push_back(Append(**log, std::string(2000, 'a' + i)));
  }
  Flip(dir, entries[4].position + 1000, 64);
  r = {};
  auto log = OpenLog(Options(dir, FileSystem::Default()), &r);
  ASSERT_EQ(log.status().code(), StatusCode::kCorruption) << log.status().ToString();
  EXPECT_NE(log.status().message().find("entry 5"), std::string::npos) << log.status().message();
  EXPECT_NE(log.status().message().find("every sector of it written"), std::string::npos)
      << log.status().message();
  // The same entry with a sector never written: a torn tail, dropped.
  Zero(dir, entries[4].position + 600, 1200);
  r = {};
  auto torn = OpenLog(Options(dir, FileSystem::Default()), &r);
  ASSERT_TRUE(torn.ok()) << torn.status().ToString();
  EXPECT_EQ(r.payloads.size(), 4u);
}

TEST(CommitLog, DamageBeforeTheCursorIsFoundByTheFullCheckOnly) {
  TempDir dir;
  Replayed r;
  std::vector<PendingEntry> entries;
  LogCursor end;
  {
    auto log = OpenLog(Options(dir, FileSystem::Default()), &r);
    ASSERT_TRUE(log.ok());
    for (int i = 0; i < 5; ++i) entries.push_back(Append(**log, std::string(100, 'a' + i)));
    end = (*log)->written_end();
  }
  Flip(dir, entries[1].position + 60, 8);
  auto log = OpenLog(Options(dir, FileSystem::Default()), &r, end);
  ASSERT_EQ(log.status().code(), StatusCode::kCorruption);
  EXPECT_NE(log.status().message().find("entry 2"), std::string::npos) << log.status().message();
  LogOptions tail_only = Options(dir, FileSystem::Default());
  tail_only.verify_all = false;
  EXPECT_TRUE(OpenLog(tail_only, &r, end).ok());
}

TEST(CommitLog, ATruncatedSegmentIsDamageEvenAfterACrash) {
  TempDir dir;
  Replayed r;
  std::vector<PendingEntry> entries;
  {
    auto log = OpenLog(Options(dir, FileSystem::Default()), &r);
    ASSERT_TRUE(log.ok());
    for (int i = 0; i < 10; ++i) entries.push_back(Append(**log, std::string(300, 'a' + i)));
  }
  // Cut in the middle of entry 7; the cursor (a crash: the checkpoint is
  // old) is at the start, so only the file's size tells.
  const std::string path = dir.Sub("log") + "/00000000000000000000.seg";
  ASSERT_EQ(::truncate(path.c_str(), static_cast<off_t>(entries[6].position + 100)), 0);
  auto log = OpenLog(Options(dir, FileSystem::Default()), &r);
  ASSERT_EQ(log.status().code(), StatusCode::kCorruption);
  EXPECT_NE(log.status().message().find("truncated"), std::string::npos) << log.status().message();
  EXPECT_NE(log.status().message().find(path), std::string::npos) << log.status().message();
}

TEST(CommitLog, AMissingSegmentInTheMiddleIsDamage) {
  TempDir dir;
  Replayed r;
  LogCursor end;
  std::vector<SegmentInfo> segments;
  {
    auto log = OpenLog(Options(dir, FileSystem::Default(), 1 << 16), &r);
    ASSERT_TRUE(log.ok());
    for (int i = 0; i < 200; ++i) Append(**log, std::string(900, 'x'));
    end = (*log)->written_end();
    segments = (*log)->Segments();
  }
  ASSERT_GE(segments.size(), 3u);
  ::unlink((dir.Sub("log") + "/" + SegmentFileName(segments[1].base)).c_str());
  auto log = OpenLog(Options(dir, FileSystem::Default(), 1 << 16), &r, end);
  ASSERT_EQ(log.status().code(), StatusCode::kCorruption);
  EXPECT_NE(log.status().message().find("no segment file holds log bytes " +
                                        std::to_string(segments[1].base)),
            std::string::npos)
      << log.status().message();
}

TEST(CommitLog, SalvageReportsEachDamagedStretchAndASkipStepsOverIt) {
  TempDir dir;
  Replayed r;
  std::vector<PendingEntry> entries;
  LogCursor end;
  {
    auto log = OpenLog(Options(dir, FileSystem::Default()), &r);
    ASSERT_TRUE(log.ok());
    for (int i = 0; i < 8; ++i) entries.push_back(Append(**log, std::string(200, 'a' + i)));
    end = (*log)->written_end();
  }
  Flip(dir, entries[2].position + 4, 64);  // the header too: its length is gone
  Flip(dir, entries[5].position + 100);
  LogOptions o = Options(dir, FileSystem::Default());
  std::vector<LogDamage> found;
  o.on_damage = [&](const LogDamage& d) { found.push_back(d); };
  o.replay_before_cursor = true;
  r = {};
  auto log = OpenLog(o, &r, end);
  ASSERT_TRUE(log.ok()) << log.status().ToString();
  ASSERT_EQ(found.size(), 2u);
  EXPECT_EQ(found[0].from, entries[2].position);
  EXPECT_EQ(found[0].to, entries[3].position);
  EXPECT_EQ(found[0].expected_index, 3u);
  EXPECT_TRUE(found[0].before_cursor);
  EXPECT_EQ(found[1].from, entries[5].position);
  EXPECT_EQ(found[1].to, entries[6].position);
  EXPECT_EQ(r.payloads.size(), 6u) << "every whole entry is replayed";
  EXPECT_EQ((*log)->placed_end(), end);
  log->reset();
  // A repair records the stretches; a later start steps over them.
  LogOptions later = Options(dir, FileSystem::Default());
  for (const LogDamage& d : found) later.skips.push_back({d.from, d.resume});
  r = {};
  auto again = OpenLog(later, &r, end);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
}

TEST(CommitLog, AnEntryOfAnotherLogFormatIsRefusedByName) {
  TempDir dir;
  Replayed r;
  PendingEntry first;
  {
    auto log = OpenLog(Options(dir, FileSystem::Default()), &r);
    ASSERT_TRUE(log.ok());
    first = Append(**log, "old");
  }
  // The same entry as a format-1 build wrote it: another format byte, and
  // the checksum to match.
  const std::string path = dir.Sub("log") + "/00000000000000000000.seg";
  const int fd = ::open(path.c_str(), O_RDWR);
  std::string entry(first.bytes(), '\0');
  ASSERT_EQ(::pread(fd, entry.data(), entry.size(), 0), static_cast<ssize_t>(entry.size()));
  entry[13] = 1;
  const uint32_t crc = crc32c::Mask(crc32c::Value(entry.data() + 8, entry.size() - 8));
  std::memcpy(entry.data() + 4, &crc, 4);
  ASSERT_EQ(::pwrite(fd, entry.data(), entry.size(), 0), static_cast<ssize_t>(entry.size()));
  ::close(fd);
  auto log = OpenLog(Options(dir, FileSystem::Default()), &r);
  ASSERT_EQ(log.status().code(), StatusCode::kFailedPrecondition) << log.status().ToString();
  EXPECT_NE(log.status().message().find("log format 1"), std::string::npos);
}

}  // namespace
}  // namespace txmq::storage
