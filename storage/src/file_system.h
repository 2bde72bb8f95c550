// The file layer under the commit log: every durable byte txmq writes
// itself (log segments, the checkpoint) goes through a FileSystem, so tests
// can swap in one that forgets what was not synced (power loss; see
// tests/testutil/fault_fs.h). LevelDB has its own layer (leveldb::Env),
// wrapped the same way in tests.
//
// Thread safety: a FileSystem may be used from several threads. A File is
// written by one thread at a time; its mapping may be read by any thread
// while the File lives.
#pragma once

#include <sys/uio.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "txmq/status.h"

namespace txmq::storage {

// A fixed-size file written at explicit offsets and read through a
// read-only shared mapping of its whole length.
class File {
 public:
  virtual ~File() = default;

  // Writes the buffers back to back at `offset` (within size()).
  virtual Status WriteAt(uint64_t offset, std::span<const iovec> data) = 0;
  // Makes every write so far durable (fdatasync: the size does not change
  // after Allocate, so only data is flushed).
  virtual Status Sync() = 0;
  // Advisory: the page cache need not keep the whole pages of [offset,
  // offset + n), which are durable (synced). Reads through mapped() still
  // see those bytes, from the disk. A log calls it for what lies far
  // behind its tail, so the cache holds the part that is read (CommitLog).
  virtual void DropCache(uint64_t offset, uint64_t n) = 0;
  // The first stretch [first, second) at or after `offset` that may hold
  // bytes other than zeros; {size(), size()} if none. Outside such
  // stretches the file reads as zeros and need not be read (a log's
  // preallocated, never written tail). This answer, reading everything,
  // is always right.
  virtual std::pair<uint64_t, uint64_t> DataAfter(uint64_t offset) const {
    return {std::min(offset, size()), size()};
  }
  // The whole file, mapped read-only; reads see writes at once.
  virtual std::string_view mapped() const = 0;
  virtual uint64_t size() const = 0;
  virtual const std::string& path() const = 0;
};

class FileSystem {
 public:
  virtual ~FileSystem() = default;

  // The real one (POSIX). Lives for the whole process.
  static FileSystem* Default();

  virtual Status CreateDirs(const std::string& path) = 0;
  // Names (not paths) of the entries of `dir`.
  virtual Result<std::vector<std::string>> List(const std::string& dir) = 0;
  virtual bool Exists(const std::string& path) = 0;
  // Opens an existing file of the size it has, or creates one of `size`
  // bytes (blocks reserved, reading as zeros) when `size` is not 0 and the
  // file is missing. The creation is durable when this returns.
  virtual Result<std::unique_ptr<File>> Open(const std::string& path, uint64_t size) = 0;
  virtual Status Remove(const std::string& path) = 0;
  // Reads a small file whole.
  virtual Result<std::string> ReadFile(const std::string& path) = 0;
  // Replaces `path` with `contents` so that a crash leaves the old or the
  // new contents, never a mix (write a temporary, sync, rename, sync dir).
  virtual Status WriteFileAtomically(const std::string& path, std::string_view contents) = 0;
};

}  // namespace txmq::storage
