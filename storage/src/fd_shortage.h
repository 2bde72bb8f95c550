// Out of file descriptors is a shortage that passes, not a broken disk.
//
// When the process has no descriptor left (EMFILE; ENFILE: the whole
// system has none) opening a file fails although the disk is fine. Taken
// as a write error it would stop the broker (fail-stop), and inside LevelDB
// it would stick for good (a failed compaction poisons the database until
// it is reopened). The broker sheds connections above its limits and keeps
// a reserve of descriptors for storage (broker/src/connection_guard.h), so
// descriptors come back: every file the storage opens (log segments, the
// checkpoint, directory listings, LevelDB's files) waits for one instead,
// trying again after 1 ms, doubling up to 100 ms, for up to
// kDescriptorWaitMax; it logs while it waits and fails only then, with an
// error that names the shortage.
//
// Thread safety: everything here may be used from any thread.
#pragma once

#include <leveldb/env.h>

#include <chrono>
#include <cstdint>
#include <string>

namespace txmq::storage {

inline constexpr std::chrono::seconds kDescriptorWaitMax{60};

// EMFILE or ENFILE.
bool IsDescriptorShortage(int err);

// The waiting of one open:
//   DescriptorWait wait(path);
//   int fd;
//   do fd = ::open(path.c_str(), flags); while (fd < 0 && wait.Again(errno));
// errno is as the last attempt left it when Again returns false.
class DescriptorWait {
 public:
  // `path` (what is being opened, for the log) must outlive the wait.
  explicit DescriptorWait(const std::string& path) : path_(path) {}
  // After a failed attempt: true when it failed for lack of descriptors
  // and may be tried again (this call slept first); false when `err` is
  // something else or the wait is over.
  bool Again(int err);

 private:
  const std::string& path_;
  int attempts_ = 0;
  std::chrono::steady_clock::time_point start_{};
  std::chrono::steady_clock::time_point next_log_{};
};

// Opens that had to wait for a descriptor since the process started.
uint64_t DescriptorWaits();

// A leveldb::Env whose file opens wait out a shortage of descriptors the
// same way (LevelDB reports one as an IOError carrying strerror's text), as
// do the syncs of its writable files (a MANIFEST's sync opens its directory).
class DescriptorWaitingEnv final : public leveldb::EnvWrapper {
 public:
  // `base` must outlive this env.
  explicit DescriptorWaitingEnv(leveldb::Env* base) : leveldb::EnvWrapper(base) {}

  leveldb::Status NewSequentialFile(const std::string& name,
                                    leveldb::SequentialFile** result) override;
  leveldb::Status NewRandomAccessFile(const std::string& name,
                                      leveldb::RandomAccessFile** result) override;
  leveldb::Status NewWritableFile(const std::string& name, leveldb::WritableFile** result) override;
  leveldb::Status NewAppendableFile(const std::string& name,
                                    leveldb::WritableFile** result) override;
  leveldb::Status GetChildren(const std::string& dir, std::vector<std::string>* result) override;
  leveldb::Status LockFile(const std::string& name, leveldb::FileLock** lock) override;
  leveldb::Status NewLogger(const std::string& name, leveldb::Logger** result) override;
};

// True when a LevelDB status says the process ran out of descriptors.
bool IsDescriptorShortage(const leveldb::Status& s);

}  // namespace txmq::storage
