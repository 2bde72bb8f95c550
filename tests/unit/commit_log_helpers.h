// What the commit log's tests share: opening a log that records what it
// replays, appending one entry, options for a log in a temp dir.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "storage/src/commit_log.h"
#include "tests/testutil/testutil.h"

namespace txmq::storage::testlog {

struct Replayed {
  std::vector<std::string> payloads;
  std::vector<uint64_t> positions;
  std::vector<uint64_t> indexes;
};

inline Result<std::unique_ptr<CommitLog>> OpenLog(const LogOptions& o, Replayed* r,
                                                  LogCursor from = {}) {
  return CommitLog::Open(o, from, [r](const LogEntry& e) {
    r->payloads.emplace_back(e.payload);
    r->positions.push_back(e.position);
    r->indexes.push_back(e.header.index);
    return Status::OK();
  });
}

// Places, writes and (optionally) syncs one entry; returns it.
inline PendingEntry Append(CommitLog& log, const std::string& payload, bool sync = true) {
  PendingEntry e;
  e.time_ms = 1000;
  e.Add(payload.data(), payload.size());
  EXPECT_TRUE(log.Place(e).ok());
  EXPECT_TRUE(log.Write(e).ok());
  if (sync) {
    EXPECT_TRUE(log.Sync().ok());
  }
  return e;
}

inline LogOptions Options(const testing::TempDir& dir, FileSystem* fs, uint64_t segment = 1 << 16) {
  LogOptions o;
  o.dir = dir.Sub("log");
  o.segment_bytes = segment;
  o.fs = fs;
  return o;
}

}  // namespace txmq::storage::testlog
