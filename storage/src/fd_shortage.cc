#include "storage/src/fd_shortage.h"

#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <memory>
#include <thread>

#include "protocol/src/log.h"

namespace txmq::storage {

namespace {

std::atomic<uint64_t> g_waits{0};

std::string DescriptorLimit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return "unknown";
  if (limit.rlim_cur == RLIM_INFINITY) return "unlimited";
  return std::to_string(limit.rlim_cur);
}

template <typename Attempt>
leveldb::Status Waiting(const std::string& name, Attempt attempt) {
  DescriptorWait wait(name);
  leveldb::Status s;
  do {
    s = attempt();
  } while (IsDescriptorShortage(s) && wait.Again(EMFILE));
  return s;
}

// LevelDB syncs a MANIFEST file by first opening and syncing its directory,
// and fails before flushing or syncing the file itself when that open
// fails: such a Sync can simply be tried again.
class WaitingWritableFile final : public leveldb::WritableFile {
 public:
  WaitingWritableFile(std::string name, leveldb::WritableFile* file)
      : name_(std::move(name)), file_(file) {}
  leveldb::Status Append(const leveldb::Slice& data) override { return file_->Append(data); }
  leveldb::Status Close() override { return file_->Close(); }
  leveldb::Status Flush() override { return file_->Flush(); }
  leveldb::Status Sync() override {
    return Waiting(name_, [&] { return file_->Sync(); });
  }

 private:
  std::string name_;
  std::unique_ptr<leveldb::WritableFile> file_;
};

leveldb::Status WrapWritable(const std::string& name, leveldb::Status opened,
                             leveldb::WritableFile** result) {
  if (opened.ok()) *result = new WaitingWritableFile(name, *result);
  return opened;
}

}  // namespace

bool IsDescriptorShortage(int err) { return err == EMFILE || err == ENFILE; }

bool IsDescriptorShortage(const leveldb::Status& s) {
  // LevelDB's POSIX env reports errno as strerror's text; ENFILE's
  // ("Too many open files in system") starts with EMFILE's.
  return s.IsIOError() && s.ToString().find(std::strerror(EMFILE)) != std::string::npos;
}

bool DescriptorWait::Again(int err) {
  if (!IsDescriptorShortage(err)) return false;
  using std::chrono::milliseconds;
  const auto now = std::chrono::steady_clock::now();
  if (attempts_ == 0) {
    start_ = now;
    next_log_ = now + std::chrono::seconds(1);
    g_waits++;
  }
  const auto waited = std::chrono::duration_cast<milliseconds>(now - start_);
  if (waited >= kDescriptorWaitMax) {
    Logger("storage")->error(
        "gave up opening {} after waiting {} s for a file descriptor: the process has none left "
        "(RLIMIT_NOFILE {}). Raise the limit (ulimit -n, LimitNOFILE=) or lower "
        "--max-connections",
        path_, waited.count() / 1000, DescriptorLimit());
    errno = err;
    return false;
  }
  if (now >= next_log_) {
    Logger("storage")->warn(
        "waiting {} ms so far for a file descriptor to open {}: the process has none left "
        "(RLIMIT_NOFILE {}); connections over the limit are being dropped",
        waited.count(), path_, DescriptorLimit());
    next_log_ = now + std::chrono::seconds(10);
  }
  std::this_thread::sleep_for(
      std::min(milliseconds(1 << std::min(attempts_, 7)), milliseconds(100)));
  ++attempts_;
  return true;
}

uint64_t DescriptorWaits() { return g_waits.load(); }

leveldb::Status DescriptorWaitingEnv::NewSequentialFile(const std::string& name,
                                                        leveldb::SequentialFile** result) {
  return Waiting(name, [&] { return target()->NewSequentialFile(name, result); });
}

leveldb::Status DescriptorWaitingEnv::NewRandomAccessFile(const std::string& name,
                                                          leveldb::RandomAccessFile** result) {
  return Waiting(name, [&] { return target()->NewRandomAccessFile(name, result); });
}

leveldb::Status DescriptorWaitingEnv::NewWritableFile(const std::string& name,
                                                      leveldb::WritableFile** result) {
  return WrapWritable(name, Waiting(name, [&] { return target()->NewWritableFile(name, result); }),
                      result);
}

leveldb::Status DescriptorWaitingEnv::NewAppendableFile(const std::string& name,
                                                        leveldb::WritableFile** result) {
  return WrapWritable(
      name, Waiting(name, [&] { return target()->NewAppendableFile(name, result); }), result);
}

leveldb::Status DescriptorWaitingEnv::GetChildren(const std::string& dir,
                                                  std::vector<std::string>* result) {
  return Waiting(dir, [&] {
    result->clear();
    return target()->GetChildren(dir, result);
  });
}

leveldb::Status DescriptorWaitingEnv::LockFile(const std::string& name, leveldb::FileLock** lock) {
  return Waiting(name, [&] { return target()->LockFile(name, lock); });
}

leveldb::Status DescriptorWaitingEnv::NewLogger(const std::string& name, leveldb::Logger** result) {
  return Waiting(name, [&] { return target()->NewLogger(name, result); });
}

}  // namespace txmq::storage
