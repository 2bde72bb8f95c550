#include "tests/testutil/fault_fs.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <map>

namespace txmq::testing {

namespace {
constexpr uint64_t kPage = 4096;
Status PowerIsOff(const std::string& path) {
  return Status::Internal("I/O error on '" + path + "': the power is off (test)");
}
}  // namespace

class FaultFile final : public storage::File {
 public:
  FaultFile(FaultFileSystem* fs, std::unique_ptr<storage::File> base)
      : fs_(fs), base_(std::move(base)) {}

  Status WriteAt(uint64_t offset, std::span<const iovec> data) override {
    if (fs_->off_) return PowerIsOff(path());
    uint64_t n = 0;
    for (const iovec& v : data) n += v.iov_len;
    {
      // What was there before, to put back on power loss.
      std::lock_guard<std::mutex> lock(fs_->mu_);
      std::string_view now = base_->mapped().substr(offset, n);
      fs_->files_[path()].undo.push_back({offset, std::string(now)});
    }
    return base_->WriteAt(offset, data);
  }

  Status Sync() override {
    if (fs_->off_ || fs_->fail_syncs_) return PowerIsOff(path());
    int fail = fs_->fail_next_syncs_.load();
    while (fail > 0 && !fs_->fail_next_syncs_.compare_exchange_weak(fail, fail - 1)) {
    }
    if (fail > 0) {
      std::lock_guard<std::mutex> lock(fs_->mu_);
      if (fs_->keep_failed_writes_) {
        fs_->files_[path()].undo.clear();
        return Status::Internal("I/O error syncing '" + path() + "' (test): writes kept");
      }
      fs_->RestoreLocked(path(), fs_->files_[path()]);
      return Status::Internal("I/O error syncing '" + path() + "' (test): unsynced writes lost");
    }
    if (Status s = base_->Sync(); !s.ok()) return s;
    std::lock_guard<std::mutex> lock(fs_->mu_);
    fs_->files_[path()].undo.clear();
    return Status::OK();
  }

  void DropCache(uint64_t offset, uint64_t n) override { base_->DropCache(offset, n); }
  std::string_view mapped() const override { return base_->mapped(); }
  uint64_t size() const override { return base_->size(); }
  const std::string& path() const override { return base_->path(); }

 private:
  FaultFileSystem* fs_;
  std::unique_ptr<storage::File> base_;
};

Result<std::unique_ptr<storage::File>> FaultFileSystem::Open(const std::string& path,
                                                             uint64_t size) {
  if (off_ && !base_->Exists(path)) return PowerIsOff(path);
  auto file = base_->Open(path, size);
  if (!file.ok()) return file.status();
  return std::unique_ptr<storage::File>(new FaultFile(this, std::move(file.value())));
}

Status FaultFileSystem::Remove(const std::string& path) {
  if (off_) return PowerIsOff(path);
  {
    std::lock_guard<std::mutex> lock(mu_);
    files_.erase(path);
  }
  return base_->Remove(path);
}

Status FaultFileSystem::WriteFileAtomically(const std::string& path, std::string_view contents) {
  if (off_) return PowerIsOff(path);
  return base_->WriteFileAtomically(path, contents);
}

uint64_t FaultFileSystem::unsynced_bytes() const {
  std::lock_guard<std::mutex> lock(mu_);
  uint64_t n = 0;
  for (const auto& [path, t] : files_) {
    for (const Undo& u : t.undo) n += u.old_bytes.size();
  }
  return n;
}

uint64_t FaultFileSystem::DropUnsynced() {
  std::lock_guard<std::mutex> lock(mu_);
  uint64_t restored = 0;
  for (auto& [path, t] : files_) restored += RestoreLocked(path, t);
  return restored;
}

uint64_t FaultFileSystem::RestoreLocked(const std::string& path, Tracked& t) {
  if (t.undo.empty()) return 0;
  const int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return 0;  // removed meanwhile
  uint64_t restored = 0;
  // A page the disk wrote back holds every write to it up to some moment:
  // torn, each page keeps a random prefix of its writes (once a write to
  // it is kept, so is every older one), never a later write without an
  // earlier one, which no disk could show.
  std::map<uint64_t, bool> kept_from_here;  // by page
  // Newest first, so each range ends with what it held at the last sync.
  for (auto u = t.undo.rbegin(); u != t.undo.rend(); ++u) {
    for (uint64_t at = 0; at < u->old_bytes.size();) {
      const uint64_t page = (u->offset + at) / kPage;
      const uint64_t page_end =
          std::min<uint64_t>(u->old_bytes.size(), page * kPage + kPage - u->offset);
      bool& kept = kept_from_here[page];
      if (!kept) kept = torn_ && (rng_() & 1);
      const bool keep_new = kept;
      if (!keep_new) {
        (void)!::pwrite(fd, u->old_bytes.data() + at, page_end - at,
                        static_cast<off_t>(u->offset + at));
        restored += page_end - at;
      }
      at = page_end;
    }
  }
  ::fsync(fd);
  ::close(fd);
  t.undo.clear();
  return restored;
}

// ---- LevelDB ----

namespace {

class FaultWritableFile final : public leveldb::WritableFile {
 public:
  FaultWritableFile(FaultLevelDbEnv* env, std::string name, leveldb::WritableFile* base,
                    uint64_t size)
      : env_(env), name_(std::move(name)), base_(base), size_(size) {}
  ~FaultWritableFile() override { delete base_; }

  leveldb::Status Append(const leveldb::Slice& data) override {
    if (env_->off()) return leveldb::Status::IOError(name_, "the power is off (test)");
    leveldb::Status s = base_->Append(data);
    if (s.ok()) {
      size_ += data.size();
      env_->Appended(name_, size_);
    }
    return s;
  }
  leveldb::Status Close() override { return base_->Close(); }
  leveldb::Status Flush() override {
    if (env_->off()) return leveldb::Status::IOError(name_, "the power is off (test)");
    return base_->Flush();
  }
  leveldb::Status Sync() override {
    if (env_->off()) return leveldb::Status::IOError(name_, "the power is off (test)");
    leveldb::Status s = base_->Sync();
    if (s.ok()) env_->Synced(name_);
    return s;
  }

 private:
  FaultLevelDbEnv* env_;
  std::string name_;
  leveldb::WritableFile* base_;
  uint64_t size_;
};

}  // namespace

leveldb::Status FaultLevelDbEnv::NewWritableFile(const std::string& name,
                                                 leveldb::WritableFile** out) {
  if (off_) return leveldb::Status::IOError(name, "the power is off (test)");
  leveldb::WritableFile* base = nullptr;
  leveldb::Status s = target()->NewWritableFile(name, &base);
  if (!s.ok()) return s;
  {
    std::lock_guard<std::mutex> lock(mu_);
    files_[name] = Sizes{};
  }
  *out = new FaultWritableFile(this, name, base, 0);
  return s;
}

leveldb::Status FaultLevelDbEnv::NewAppendableFile(const std::string& name,
                                                   leveldb::WritableFile** out) {
  if (off_) return leveldb::Status::IOError(name, "the power is off (test)");
  uint64_t size = 0;
  if (!target()->GetFileSize(name, &size).ok()) size = 0;
  leveldb::WritableFile* base = nullptr;
  leveldb::Status s = target()->NewAppendableFile(name, &base);
  if (!s.ok()) return s;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto& sizes = files_[name];
    sizes.synced = sizes.written = size;  // what was there is taken as durable
  }
  *out = new FaultWritableFile(this, name, base, size);
  return s;
}

leveldb::Status FaultLevelDbEnv::RemoveFile(const std::string& name) {
  if (off_) return leveldb::Status::IOError(name, "the power is off (test)");
  {
    std::lock_guard<std::mutex> lock(mu_);
    files_.erase(name);
  }
  return target()->RemoveFile(name);
}

void FaultLevelDbEnv::Appended(const std::string& name, uint64_t size) {
  std::lock_guard<std::mutex> lock(mu_);
  files_[name].written = size;
}

void FaultLevelDbEnv::Synced(const std::string& name) {
  std::lock_guard<std::mutex> lock(mu_);
  auto& sizes = files_[name];
  sizes.synced = sizes.written;
}

uint64_t FaultLevelDbEnv::DropUnsynced() {
  std::lock_guard<std::mutex> lock(mu_);
  uint64_t dropped = 0;
  for (auto& [name, sizes] : files_) {
    if (sizes.written <= sizes.synced) continue;
    if (::truncate(name.c_str(), static_cast<off_t>(sizes.synced)) == 0) {
      dropped += sizes.written - sizes.synced;
    }
    sizes.written = sizes.synced;
  }
  return dropped;
}

}  // namespace txmq::testing
