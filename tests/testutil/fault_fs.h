// Power loss for tests: file layers that remember what was written but not
// synced, and can forget it the way a machine that loses power does.
//
//   FaultFileSystem fs;                 // wraps the real one (txmq's own files)
//   FaultLevelDbEnv env;                // wraps leveldb::Env::Default() (the index)
//   ... run a broker on them ...
//   fs.PowerOff(); env.PowerOff();      // every later write and sync fails
//   fs.DropUnsynced(); env.DropUnsynced();
//   ... destroy the broker, start a new one on the same directory ...
//
// DropUnsynced restores every byte written since the file's last Sync (all
// of them, or with Torn(), a random choice of 4 KiB pages, as a disk that
// persisted some pages of a write and not others). File creation, removal
// and renames are treated as durable at once (the commit log creates
// segments durably; LevelDB syncs its manifest).
//
// Thread safety: safe to use from several threads.
#pragma once

#include <leveldb/env.h>

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <vector>

#include "storage/src/file_system.h"

namespace txmq::testing {

class FaultFileSystem final : public storage::FileSystem {
 public:
  explicit FaultFileSystem(storage::FileSystem* base = storage::FileSystem::Default())
      : base_(base) {}

  // From now on every write and sync fails (EIO-like INTERNAL).
  void PowerOff() { off_ = true; }
  // Writes still reach the page cache but syncs fail: the moment between
  // a write and its fdatasync.
  void FailSyncs() { fail_syncs_ = true; }
  // Syncs work again, and what was written meanwhile is still unsynced:
  // a process killed with its last writes in the page cache, restarted.
  void AllowSyncs() { fail_syncs_ = false; }
  // The next `n` syncs fail and, as a kernel does after a writeback error,
  // the file's unsynced writes are lost; later syncs succeed again (a
  // transient fault: the caller must not trust a later sync to cover them).
  void FailNextSyncs(int n) {
    keep_failed_writes_ = false;
    fail_next_syncs_ = n;
  }
  // The same, but the writes reach the disk anyway (the error was another
  // page's, or the kernel wrote them back later): a caller must not take
  // what follows its last good sync for nothing.
  void FailNextSyncsKeepingWrites(int n) {
    keep_failed_writes_ = true;
    fail_next_syncs_ = n;
  }
  bool powered_off() const { return off_; }
  // Keep a random subset of unsynced pages instead of none.
  void Torn(uint64_t seed) {
    torn_ = true;
    rng_.seed(seed);
  }
  // Forgets unsynced writes; returns how many bytes were restored.
  uint64_t DropUnsynced();
  // Bytes written and not synced right now.
  uint64_t unsynced_bytes() const;

  Status CreateDirs(const std::string& path) override { return base_->CreateDirs(path); }
  Result<std::vector<std::string>> List(const std::string& dir) override {
    return base_->List(dir);
  }
  bool Exists(const std::string& path) override { return base_->Exists(path); }
  Result<std::unique_ptr<storage::File>> Open(const std::string& path, uint64_t size) override;
  Status Remove(const std::string& path) override;
  Result<std::string> ReadFile(const std::string& path) override { return base_->ReadFile(path); }
  Status WriteFileAtomically(const std::string& path, std::string_view contents) override;

 private:
  friend class FaultFile;
  struct Undo {
    uint64_t offset;
    std::string old_bytes;
  };
  struct Tracked {
    std::vector<Undo> undo;  // in write order
  };
  // Puts back what `t` remembers; returns the bytes restored. Holds mu_.
  uint64_t RestoreLocked(const std::string& path, Tracked& t);

  storage::FileSystem* base_;
  std::atomic<bool> off_{false};
  std::atomic<bool> fail_syncs_{false};
  std::atomic<int> fail_next_syncs_{0};
  std::atomic<bool> keep_failed_writes_{false};
  bool torn_ = false;
  std::mt19937_64 rng_;
  mutable std::mutex mu_;
  std::map<std::string, Tracked> files_;  // by path; guarded by mu_
};

// leveldb::Env that truncates each file it wrote back to its size at the
// last Sync (0 if never synced) on DropUnsynced.
class FaultLevelDbEnv final : public leveldb::EnvWrapper {
 public:
  FaultLevelDbEnv() : leveldb::EnvWrapper(leveldb::Env::Default()) {}

  void PowerOff() { off_ = true; }
  uint64_t DropUnsynced();

  leveldb::Status NewWritableFile(const std::string& name, leveldb::WritableFile** out) override;
  leveldb::Status NewAppendableFile(const std::string& name, leveldb::WritableFile** out) override;
  leveldb::Status RemoveFile(const std::string& name) override;

  // Called by the wrapped files.
  void Appended(const std::string& name, uint64_t size);
  void Synced(const std::string& name);
  bool off() const { return off_; }

 private:
  struct Sizes {
    uint64_t synced = 0;
    uint64_t written = 0;
  };
  std::atomic<bool> off_{false};
  std::mutex mu_;
  std::map<std::string, Sizes> files_;  // guarded by mu_
};

}  // namespace txmq::testing
