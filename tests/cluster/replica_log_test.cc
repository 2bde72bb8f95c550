// FileReplicaLog: the chain, recovery after a restart and after a power
// loss (tests/testutil/fault_fs.h forgets what was not synced), durable
// epochs, truncation and segment rolls.
#include "broker/src/cluster/file_replica_log.h"

#include <gtest/gtest.h>

#include "tests/testutil/fault_fs.h"
#include "tests/testutil/testutil.h"

namespace txmq::cluster {
namespace {

using testing::FaultFileSystem;
using testing::TempDir;

// The entry after `prev` in epoch `epoch` with `payload`.
ReplicaEntry Next(EntryRef prev, int64_t epoch, std::string payload) {
  ReplicaEntry e{prev.index + 1, epoch, 0, std::move(payload)};
  e.crc = ChainCrc(prev.crc, epoch, e.index, e.payload);
  return e;
}

std::unique_ptr<FileReplicaLog> OpenLog(const std::string& dir, storage::FileSystem* fs,
                                        uint64_t segment_bytes = 64 << 10) {
  auto log = FileReplicaLog::Open({dir, segment_bytes, fs});
  EXPECT_TRUE(log.ok()) << log.status().message();
  return log.ok() ? std::move(*log) : nullptr;
}

void AppendN(ReplicaLog& log, int n, int64_t epoch, size_t bytes = 100) {
  for (int i = 0; i < n; ++i) {
    ASSERT_TRUE(log.Append(Next(log.last(), epoch, std::string(bytes, 'a' + i % 26))).ok());
  }
}

TEST(ReplicaLog, AppendsSyncsAndRecoversTheSameChain) {
  TempDir dir;
  EntryRef last;
  {
    auto log = OpenLog(dir.path(), storage::FileSystem::Default());
    AppendN(*log, 5, 1);
    AppendN(*log, 5, 3);
    EXPECT_EQ(log->durable().index, 0u);
    ASSERT_TRUE(log->Sync().ok());
    EXPECT_EQ(log->durable(), log->last());
    last = log->last();
  }
  auto log = OpenLog(dir.path(), storage::FileSystem::Default());
  EXPECT_EQ(log->last(), last);
  EXPECT_EQ(log->highest_epoch(), 3);
  EXPECT_EQ(log->epochs().starts(), (std::map<int64_t, uint64_t>{{1, 1}, {3, 6}}));
  auto e7 = log->Read(7);
  ASSERT_TRUE(e7.ok());
  EXPECT_EQ(e7->epoch, 3);
  EXPECT_EQ(e7->payload, std::string(100, 'b'));  // the second of its AppendN
}

// As the commit log's: the page cache keeps the tail the leader sends
// from and lets go of the rest once it is durable, also of what recovery
// read.
// A drop leaves a folio (the page cache's unit, up to 2 MiB) across its end
// cached: what tests of the cache allow before the end of a drop.
constexpr uint64_t kFolio = 2 << 20;

TEST(ReplicaLog, ThePageCacheKeepsOnlyTheTailOfTheLog) {
  TempDir dir;
  const std::string segment = dir.path() + "/00000000000000000001.rlog";
  FileReplicaLogOptions o{dir.path(), 16 << 20};
  o.cached_tail_bytes = 1 << 20;
  const std::string payload(64 << 10, 'p');
  uint64_t written = 0;
  {
    auto log = FileReplicaLog::Open(o);
    ASSERT_TRUE(log.ok()) << log.status().message();
    for (int i = 0; i < 40; ++i) {
      AppendN(**log, 4, 1, payload.size());
      ASSERT_TRUE((*log)->Sync().ok());
    }
    written = 160 * (payload.size() + 32);
    // Dropped in steps of 1 MiB: everything 2 MiB before the end is gone.
    EXPECT_EQ(testing::CachedPages(segment, 0, written - (2 << 20) - kFolio), 0);
    const uint64_t recent = (written - (512 << 10)) / 4096 * 4096;
    EXPECT_EQ(testing::CachedPages(segment, recent, 256 << 10), (256 << 10) / 4096);
    auto first = (*log)->View(1);
    ASSERT_TRUE(first.ok()) << first.status().message();
    EXPECT_EQ(first->payload, std::string(payload.size(), 'a')) << "read back from the disk";
  }
  auto reopened = FileReplicaLog::Open(o);  // recovery reads every entry
  ASSERT_TRUE(reopened.ok()) << reopened.status().message();
  EXPECT_EQ((*reopened)->last().index, 160u);
  EXPECT_EQ(testing::CachedPages(segment, 0, written - (2 << 20) - kFolio), 0);
}

// A follower's standby store reads the log right behind its end. What it
// reads leaves the cache, but not the log's cached tail: a follower that
// wins reads recent entries from there to catch up laggards.
TEST(ReplicaLog, AReaderLeavesTheLastBytesItWasToldToKeepCached) {
  TempDir dir;
  FileReplicaLogOptions o{dir.path(), 4 << 20};
  o.cached_tail_bytes = 1 << 20;
  const uint64_t size = 64 << 10;
  auto log = FileReplicaLog::Open(o);
  ASSERT_TRUE(log.ok()) << log.status().message();
  for (int i = 0; i < 45; ++i) {
    AppendN(**log, 4, 1, size);
    ASSERT_TRUE((*log)->Sync().ok());
  }
  std::vector<std::string> segments;  // oldest first
  for (const auto& f : std::filesystem::directory_iterator(dir.path())) {
    if (f.path().extension() == ".rlog") segments.push_back(f.path().string());
  }
  std::sort(segments.begin(), segments.end());
  ASSERT_EQ(segments.size(), 3u);
  const uint64_t last_first = std::stoull(std::filesystem::path(segments[2]).stem().string());
  const uint64_t per_segment = (last_first - 1) / 2 * (size + 32);  // the bytes of its entries
  const uint64_t in_last = (180 - last_first + 1) * (size + 32);
  {
    ReplicaLogReader reader(dir.path(), storage::FileSystem::Default(), 0, o.cached_tail_bytes);
    uint64_t sum = 0;
    ASSERT_TRUE(reader
                    .Read(180,
                          [&](const EntryView& e) {
                            for (char c : e.payload) sum += static_cast<unsigned char>(c);
                            return Status::OK();
                          })
                    .ok());
    EXPECT_GT(sum, 0u);
  }
  // Read through from the disk, then dropped: the first two segments and
  // the last one's start.
  EXPECT_EQ(testing::CachedPages(segments[0], 0, per_segment - kFolio), 0);
  EXPECT_EQ(testing::CachedPages(segments[1], 0, per_segment - kFolio), 0);
  EXPECT_EQ(testing::CachedPages(segments[2], 0, in_last - (1 << 20) - kFolio), 0);
  // The last MiB stays.
  const uint64_t recent = (in_last - (512 << 10)) / 4096 * 4096;
  EXPECT_EQ(testing::CachedPages(segments[2], recent, 256 << 10), (256 << 10) / 4096)
      << "the reader dropped the log's cached tail";
}

TEST(ReplicaLog, WhatAReaderFarBehindBroughtBackLeavesTheCacheAgain) {
  TempDir dir;
  const std::string segment = dir.path() + "/00000000000000000001.rlog";
  FileReplicaLogOptions o{dir.path(), 16 << 20};
  o.cached_tail_bytes = 1 << 20;
  const uint64_t size = 64 << 10;
  auto log = FileReplicaLog::Open(o);
  ASSERT_TRUE(log.ok()) << log.status().message();
  for (int i = 0; i < 40; ++i) {
    AppendN(**log, 4, 1, size);
    ASSERT_TRUE((*log)->Sync().ok());
  }
  const uint64_t behind = 80 * (size + 32);  // where entry 81 starts
  ASSERT_EQ(testing::CachedPages(segment, 0, behind), 0);

  // A follower catching up: entries 1..80 (5 MiB) read back in; each 1
  // MiB of them (16 entries) leaves the cache when the next entry is viewed.
  uint64_t sum = 0;
  for (uint64_t index = 1; index <= 80; ++index) {
    auto view = (*log)->View(index);
    ASSERT_TRUE(view.ok()) << view.status().message();
    for (char c : view->payload) sum += static_cast<unsigned char>(c);
  }
  EXPECT_EQ(testing::CachedPages(segment, 0, 64 * (size + 32) - kFolio), 0)
      << "entries 1..64 left the cache when the 65th was viewed";
  EXPECT_GT(sum, 0u);
  EXPECT_GT(testing::CachedPages(segment, 0, behind), 0) << "read back from the disk";
}

TEST(ReplicaLog, RefusesAnEntryThatDoesNotChainOrFollow) {
  TempDir dir;
  auto log = OpenLog(dir.path(), storage::FileSystem::Default());
  AppendN(*log, 2, 2);
  ReplicaEntry bad = Next(log->last(), 2, "x");
  bad.crc ^= 1;
  EXPECT_EQ(log->Append(bad).code(), StatusCode::kCorruption);
  EXPECT_EQ(log->Append(Next({5, 0}, 2, "x")).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(log->Append(Next(log->last(), 1, "x")).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(log->last().index, 2u);
}

TEST(ReplicaLog, PowerLossKeepsExactlyWhatWasSynced) {
  TempDir dir;
  FaultFileSystem fs;
  EntryRef synced;
  {
    auto log = OpenLog(dir.path(), &fs, 4096);  // a few entries per segment: rolls too
    AppendN(*log, 30, 1);
    ASSERT_TRUE(log->Sync().ok());
    synced = log->durable();
    AppendN(*log, 30, 1);  // written, never synced
    fs.PowerOff();
  }
  EXPECT_GT(fs.DropUnsynced(), 0u);
  auto log = OpenLog(dir.path(), storage::FileSystem::Default(), 4096);
  EXPECT_EQ(log->last(), synced);
  // And it goes on from there.
  AppendN(*log, 3, 1);
  ASSERT_TRUE(log->Sync().ok());
  EXPECT_EQ(log->last().index, 33u);
}

// A failed sync forgets the entries since the last good one, and the
// segments begun for them go too: entries appended again (a new leader's,
// of other sizes) roll at other indexes, and a leftover segment named by
// a forgotten index would be read in place of the log's own entries, and
// at the next start would end the log before them (entries synced and
// acknowledged, lost).
TEST(ReplicaLog, AFailedSyncLeavesNoSegmentOfTheEntriesItForgot) {
  TempDir dir;
  FaultFileSystem fs;
  uint64_t old_roll = 0;
  {
    auto log = OpenLog(dir.path(), &fs, 4096);
    AppendN(*log, 10, 1);
    ASSERT_TRUE(log->Sync().ok());
    AppendN(*log, 40, 1);  // rolls into a second segment
    for (uint64_t i = 11; i <= 50 && old_roll == 0; ++i) {
      if (fs.Exists(dir.Sub(std::string(20 - std::to_string(i).size(), '0') + std::to_string(i) +
                            ".rlog"))) {
        old_roll = i;
      }
    }
    ASSERT_NE(old_roll, 0u) << "the test wants a roll before the failed sync";
    fs.FailNextSyncs(1);
    ASSERT_FALSE(log->Sync().ok());
    ASSERT_EQ(log->last().index, 10u);
    AppendN(*log, 200, 2, 10);  // smaller entries: the first segment holds past old_roll
    ASSERT_TRUE(log->Sync().ok());
    ASSERT_EQ(log->last().index, 210u);
    auto view = log->View(old_roll);
    ASSERT_TRUE(view.ok()) << view.status().ToString();
    EXPECT_EQ(view->epoch, 2) << "entry " << old_roll << " was read from the forgotten segment";
    EXPECT_EQ(view->payload.size(), 10u);
  }
  auto log = OpenLog(dir.path(), &fs, 4096);
  ASSERT_NE(log, nullptr);
  EXPECT_EQ(log->last().index, 210u) << "synced entries were lost at the restart";
}

// An entry a failed sync forgot, whose bytes reached the disk anyway, is
// followed by the same entry written again larger, in a new segment: the
// old bytes chain (the entry before is the same), so without an end to
// the old segment recovery would take them for the log and lose the
// synced entry.
TEST(ReplicaLog, AnEntryRewrittenInANewSegmentAfterAFailedSyncIsTheOneRecovered) {
  TempDir dir;
  FaultFileSystem fs;
  {
    auto log = OpenLog(dir.path(), &fs, 4096);
    AppendN(*log, 10, 1);  // 1,320 of the segment's 4,096 bytes
    ASSERT_TRUE(log->Sync().ok());
    AppendN(*log, 1, 1);  // fits
    fs.FailNextSyncsKeepingWrites(1);
    ASSERT_FALSE(log->Sync().ok());
    ASSERT_EQ(log->last().index, 10u);
    AppendN(*log, 1, 2, 3000);  // does not fit: a new segment
    ASSERT_TRUE(log->Sync().ok());
  }
  auto log = OpenLog(dir.path(), &fs, 4096);
  ASSERT_NE(log, nullptr);
  ASSERT_EQ(log->last().index, 11u);
  auto entry = log->View(11);
  ASSERT_TRUE(entry.ok()) << entry.status().ToString();
  EXPECT_EQ(entry->epoch, 2) << "the forgotten entry came back in place of the synced one";
  EXPECT_EQ(entry->payload.size(), 3000u);
}

TEST(ReplicaLog, RaisedEpochIsDurableAndNeverLowered) {
  TempDir dir;
  FaultFileSystem fs;
  {
    auto log = OpenLog(dir.path(), &fs);
    ASSERT_TRUE(log->RaiseEpoch(7).ok());
    ASSERT_TRUE(log->RaiseEpoch(5).ok());
    EXPECT_EQ(log->highest_epoch(), 7);
    fs.PowerOff();
  }
  fs.DropUnsynced();
  auto log = OpenLog(dir.path(), storage::FileSystem::Default());
  EXPECT_EQ(log->highest_epoch(), 7);
}

TEST(ReplicaLog, TruncationSurvivesRestartAndTheLogContinuesAfterIt) {
  TempDir dir;
  {
    auto log = OpenLog(dir.path(), storage::FileSystem::Default(), 4096);
    AppendN(*log, 40, 1);  // over several segments
    ASSERT_TRUE(log->Sync().ok());
    EXPECT_EQ(log->TruncateAfter(41).code(), StatusCode::kInvalidArgument);
    ASSERT_TRUE(log->TruncateAfter(12).ok());
    EXPECT_EQ(log->last().index, 12u);
    EXPECT_EQ(log->durable().index, 12u);
    EXPECT_FALSE(log->Read(13).ok());
    AppendN(*log, 2, 2, 10);  // shorter than the entries they replace
    ASSERT_TRUE(log->Sync().ok());
  }
  auto log = OpenLog(dir.path(), storage::FileSystem::Default(), 4096);
  EXPECT_EQ(log->last().index, 14u);
  EXPECT_EQ(log->epochs().starts(), (std::map<int64_t, uint64_t>{{1, 1}, {2, 13}}));
  EXPECT_EQ(log->Read(14)->payload, std::string(10, 'b'));
}

TEST(ReplicaLog, TruncatingEverything) {
  TempDir dir;
  auto log = OpenLog(dir.path(), storage::FileSystem::Default());
  AppendN(*log, 3, 1);
  ASSERT_TRUE(log->Sync().ok());
  ASSERT_TRUE(log->TruncateAfter(0).ok());
  EXPECT_EQ(log->last(), EntryRef{});
  EXPECT_TRUE(log->epochs().starts().empty());
  AppendN(*log, 1, 4);
  ASSERT_TRUE(log->Sync().ok());
  log.reset();
  log = OpenLog(dir.path(), storage::FileSystem::Default());
  EXPECT_EQ(log->last().index, 1u);
  EXPECT_EQ(log->Read(1)->epoch, 4);
}

// Entries are found from a sparse index (every 64th) and their headers:
// any entry, in any order, across segment rolls and epochs, before and
// after a restart and a truncation in the middle of a stride.
TEST(ReplicaLog, EveryEntryIsFoundInAnyOrderFromTheSparseIndex) {
  TempDir dir;
  std::vector<ReplicaEntry> written;
  auto log = OpenLog(dir.path(), storage::FileSystem::Default(), 4096);  // ~10 entries each
  for (int i = 0; i < 700; ++i) {
    const int64_t epoch = 1 + i / 250;
    // Sizes vary so that rolls fall at varying points of a stride.
    ReplicaEntry e = Next(log->last(), epoch, std::string(100 + (i * 37) % 300, 'a' + i % 26));
    ASSERT_TRUE(log->Append(e).ok()) << i;
    written.push_back(e);
  }
  ASSERT_TRUE(log->Sync().ok());
  auto check = [&](ReplicaLog& l, uint64_t upto) {
    // Backwards, then strided, then forwards: each walks from a mark or
    // from a place located before.
    for (uint64_t i = upto; i >= 1; --i) {
      auto e = l.Read(i);
      ASSERT_TRUE(e.ok()) << i << ": " << e.status().message();
      ASSERT_EQ(e->epoch, written[i - 1].epoch) << i;
      ASSERT_EQ(e->payload, written[i - 1].payload) << i;
      ASSERT_EQ(l.CrcAt(i), written[i - 1].crc) << i;
    }
    for (uint64_t i = 1; i <= upto; i += 61) ASSERT_EQ(l.CrcAt(i), written[i - 1].crc) << i;
    for (uint64_t i = 1; i <= upto; ++i) ASSERT_EQ(l.View(i)->crc, written[i - 1].crc) << i;
    EXPECT_FALSE(l.CrcAt(upto + 1).has_value());
    EXPECT_EQ(l.View(upto + 1).status().code(), StatusCode::kNotFound);
  };
  check(*log, 700);
  log.reset();
  log = OpenLog(dir.path(), storage::FileSystem::Default(), 4096);
  ASSERT_EQ(log->last().index, 700u);
  check(*log, 700);

  ASSERT_TRUE(log->TruncateAfter(300).ok());  // inside the 5th stride
  EXPECT_EQ(log->last(), (EntryRef{300, written[299].crc}));
  check(*log, 300);
  written.resize(300);
  for (int i = 0; i < 100; ++i) {
    ReplicaEntry e = Next(log->last(), 9, std::string(50 + i, 'z'));
    ASSERT_TRUE(log->Append(e).ok()) << i;
    written.push_back(e);
  }
  ASSERT_TRUE(log->Sync().ok());
  check(*log, 400);
  log.reset();
  log = OpenLog(dir.path(), storage::FileSystem::Default(), 4096);
  ASSERT_EQ(log->last().index, 400u);
  check(*log, 400);
}

// A new leader's store is rebuilt from the committed entries read off
// the files by the broker's thread while the replication thread owns the
// log and appends after them.
TEST(ReplicaLog, CommittedEntriesAreReadOffTheFilesWhileTheLogAppends) {
  TempDir dir;
  auto log = OpenLog(dir.path(), storage::FileSystem::Default(), 4096);
  std::vector<ReplicaEntry> written;
  for (int i = 0; i < 200; ++i) {
    ReplicaEntry e = Next(log->last(), 1 + i / 80, std::string(100 + (i * 53) % 400, 'a' + i % 26));
    ASSERT_TRUE(log->Append(e).ok());
    written.push_back(e);
  }
  ASSERT_TRUE(log->Sync().ok());
  std::vector<std::string> read;
  ASSERT_TRUE(
      ReadReplicaEntries(dir.path(), storage::FileSystem::Default(), 150, [&](const EntryView& e) {
        EXPECT_EQ(e.index, read.size() + 1);
        EXPECT_EQ(e.crc, written[e.index - 1].crc);
        EXPECT_EQ(e.epoch, written[e.index - 1].epoch);
        read.emplace_back(e.payload);
        // The owner goes on appending meanwhile.
        return log->Append(Next(log->last(), 9, "later"));
      }).ok());
  ASSERT_EQ(read.size(), 150u);
  for (size_t i = 0; i < read.size(); ++i) ASSERT_EQ(read[i], written[i].payload) << i;

  // Asked for more than the log holds: an error naming the entry.
  auto beyond = ReadReplicaEntries(dir.path(), storage::FileSystem::Default(), 10'000,
                                   [](const EntryView&) { return Status::OK(); });
  EXPECT_EQ(beyond.code(), StatusCode::kCorruption);
  EXPECT_NE(beyond.message().find("entry 351"), std::string::npos) << beyond.message();
  // The caller's error stops the walk.
  int calls = 0;
  auto stopped =
      ReadReplicaEntries(dir.path(), storage::FileSystem::Default(), 100, [&](const EntryView&) {
        return ++calls == 3 ? Status::Unavailable("enough") : Status::OK();
      });
  EXPECT_EQ(stopped.code(), StatusCode::kUnavailable);
  EXPECT_EQ(calls, 3);
}

// A follower's store applies entries as they commit: one reader follows
// the growing log, each entry handed over once, across segment rolls, and
// an entry its caller refused comes again on the next read.
TEST(ReplicaLog, AReaderFollowsTheGrowingLogReadingEachEntryOnce) {
  TempDir dir;
  auto log = OpenLog(dir.path(), storage::FileSystem::Default(), 4096);
  std::vector<ReplicaEntry> written;
  auto append = [&](int n) {
    for (int i = 0; i < n; ++i) {
      const int k = static_cast<int>(written.size());
      ReplicaEntry e =
          Next(log->last(), 1 + k / 70, std::string(100 + (k * 53) % 400, 'a' + k % 26));
      ASSERT_TRUE(log->Append(e).ok());
      written.push_back(e);
    }
    ASSERT_TRUE(log->Sync().ok());
  };
  ReplicaLogReader reader(dir.path(), storage::FileSystem::Default());
  std::vector<uint64_t> seen;
  auto collect = [&](const EntryView& e) {
    EXPECT_EQ(e.payload, written[e.index - 1].payload) << e.index;
    EXPECT_EQ(e.crc, written[e.index - 1].crc) << e.index;
    seen.push_back(e.index);
    return Status::OK();
  };
  append(30);
  ASSERT_TRUE(reader.Read(25, collect).ok());
  EXPECT_EQ(reader.last(), 25u);
  ASSERT_TRUE(reader.Read(25, collect).ok());  // nothing new
  append(170);                                 // rolls several segments
  ASSERT_TRUE(reader.Read(120, collect).ok());
  int calls = 0;
  auto refused = reader.Read(200, [&](const EntryView& e) {
    if (++calls == 4) return Status::Unavailable("not now");
    return collect(e);
  });
  EXPECT_EQ(refused.code(), StatusCode::kUnavailable);
  EXPECT_EQ(reader.last(), 123u);
  ASSERT_TRUE(reader.Read(200, collect).ok());
  ASSERT_EQ(seen.size(), 200u);
  for (size_t i = 0; i < seen.size(); ++i) ASSERT_EQ(seen[i], i + 1);
  // Past the log's end: an error naming the entry, nothing handed over.
  auto beyond = reader.Read(201, collect);
  EXPECT_EQ(beyond.code(), StatusCode::kCorruption);
  EXPECT_NE(beyond.message().find("entry 201"), std::string::npos) << beyond.message();
  EXPECT_EQ(seen.size(), 200u);
}

// The broker continues a store that holds the first entries already: its
// reader starts anywhere, at a segment's first entry or inside one, and
// still checks the chain from there.
TEST(ReplicaLog, AReaderStartsAfterAnyEntry) {
  TempDir dir;
  auto log = OpenLog(dir.path(), storage::FileSystem::Default(), 4096);
  std::vector<ReplicaEntry> written;
  for (int k = 0; k < 120; ++k) {
    ReplicaEntry e = Next(log->last(), 1 + k / 50, std::string(100 + (k * 37) % 300, 'a' + k % 26));
    ASSERT_TRUE(log->Append(e).ok());
    written.push_back(e);
  }
  ASSERT_TRUE(log->Sync().ok());
  std::vector<uint64_t> firsts;  // the entries that start a segment
  auto names = storage::FileSystem::Default()->List(dir.path());
  ASSERT_TRUE(names.ok());
  for (const std::string& name : *names) {
    if (name.ends_with(".rlog")) firsts.push_back(std::stoull(name.substr(0, 20)));
  }
  ASSERT_GT(firsts.size(), 3u) << "the test should roll segments";
  std::vector<uint64_t> starts = {0, 1, 2, 119, 120};
  for (uint64_t f : firsts) {
    starts.push_back(f - 1);
    starts.push_back(f);
  }
  for (uint64_t after : starts) {
    ReplicaLogReader reader(dir.path(), storage::FileSystem::Default(), after);
    uint64_t expected = after + 1;
    Status s = reader.Read(120, [&](const EntryView& e) {
      EXPECT_EQ(e.index, expected) << "after " << after;
      EXPECT_EQ(e.payload, written[e.index - 1].payload) << e.index;
      ++expected;
      return Status::OK();
    });
    ASSERT_TRUE(s.ok()) << "after " << after << ": " << s.ToString();
    EXPECT_EQ(expected, 121u) << "after " << after;
    EXPECT_EQ(reader.last(), 120u);
  }
}

TEST(EpochTable, EndsAndFloors) {
  EpochTable t;
  t.Append(1, 1);
  t.Append(1, 2);
  t.Append(3, 10);
  t.Append(6, 20);
  EXPECT_EQ(t.EndOf(1, 25), 9u);
  EXPECT_EQ(t.EndOf(3, 25), 19u);
  EXPECT_EQ(t.EndOf(6, 25), 25u);
  EXPECT_EQ(t.FloorEpoch(5), 3);
  EXPECT_EQ(t.FloorEpoch(0), std::nullopt);
  EXPECT_EQ(t.EpochAt(15), 3);
  EXPECT_EQ(t.EpochAt(0), 0);
  t.TruncateAfter(10);
  EXPECT_EQ(t.starts(), (std::map<int64_t, uint64_t>{{1, 1}, {3, 10}}));
}

}  // namespace
}  // namespace txmq::cluster
