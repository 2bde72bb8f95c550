// Opening a LevelDB directory the way txmq uses it, with errors a person can
// act on (a held lock says which directory is in use).
#pragma once

#include <leveldb/cache.h>
#include <leveldb/db.h>
#include <leveldb/env.h>
#include <leveldb/filter_policy.h>

#include <memory>
#include <string>

#include "txmq/status.h"

namespace txmq::storage {

struct DbOptions {
  // Larger memtables mean fewer, larger level-0 files under a steady
  // message stream; costs that much memory and a longer replay on restart.
  size_t write_buffer_size = 32 * 1024 * 1024;
  // Size at which LevelDB starts a new table file. Larger files mean fewer
  // compactions (each one larger) while data streams in.
  size_t max_file_size = 8 * 1024 * 1024;
  size_t block_cache_bytes = 64 * 1024 * 1024;
  // Table files LevelDB keeps open. Its POSIX env maps up to 1000 of them
  // and closes their descriptors; above that each takes a descriptor.
  int max_open_files = 1000;
  bool create_if_missing = true;
  // Message bodies are usually already compact (or encrypted); trying to
  // compress them on every compaction costs CPU for nothing. Local stores
  // of business rows may want it.
  bool compress = false;
  // Refuse to open (and stop writing) on any sign of damage instead of
  // skipping it.
  bool paranoid_checks = false;
  // File layer; null: leveldb::Env::Default() (tests pass one that loses power).
  leveldb::Env* env = nullptr;
};

// Read options that check each block's CRC: a damaged file is a
// Corruption error, never a wrong answer. LevelDB's default skips the check.
inline leveldb::ReadOptions CheckedReads() {
  leveldb::ReadOptions read;
  read.verify_checksums = true;
  return read;
}

// Owns the DB and the objects its options point to, and closes them in the
// right order.
class Db {
 public:
  static Result<std::unique_ptr<Db>> Open(const std::string& path, const DbOptions& options);
  ~Db();
  Db(const Db&) = delete;
  Db& operator=(const Db&) = delete;

  leveldb::DB* get() const { return db_.get(); }
  leveldb::DB* operator->() const { return db_.get(); }
  const std::string& path() const { return path_; }

 private:
  Db() = default;
  std::string path_;
  std::unique_ptr<leveldb::Cache> cache_;
  std::unique_ptr<const leveldb::FilterPolicy> filter_;
  std::unique_ptr<leveldb::DB> db_;
};

// LevelDB status -> txmq Status, with `context` ("writing batch") in front.
Status FromLevelDb(const leveldb::Status& s, const std::string& context);

}  // namespace txmq::storage
