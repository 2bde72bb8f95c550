#include "storage/src/index_env.h"

#include <algorithm>
#include <memory>

namespace txmq::storage {

namespace {

// Keeps the file (so LevelDB can list, close and delete it) and drops what
// is written into it.
class DiscardingFile final : public leveldb::WritableFile {
 public:
  explicit DiscardingFile(leveldb::WritableFile* file) : file_(file) {}
  leveldb::Status Append(const leveldb::Slice&) override { return leveldb::Status::OK(); }
  leveldb::Status Close() override { return file_->Close(); }
  leveldb::Status Flush() override { return leveldb::Status::OK(); }
  leveldb::Status Sync() override { return leveldb::Status::OK(); }

 private:
  std::unique_ptr<leveldb::WritableFile> file_;
};

// A table file or manifest: `before` runs first when it is synced.
class SyncAfterFile final : public leveldb::WritableFile {
 public:
  SyncAfterFile(leveldb::WritableFile* file, const std::function<leveldb::Status()>* before)
      : file_(file), before_(before) {}
  leveldb::Status Append(const leveldb::Slice& data) override { return file_->Append(data); }
  leveldb::Status Close() override { return file_->Close(); }
  leveldb::Status Flush() override { return file_->Flush(); }
  leveldb::Status Sync() override {
    if (leveldb::Status s = (*before_)(); !s.ok()) return s;
    return file_->Sync();
  }

 private:
  std::unique_ptr<leveldb::WritableFile> file_;
  const std::function<leveldb::Status()>* before_;
};

std::string BaseName(const std::string& path) {
  const auto slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

}  // namespace

leveldb::Status WalDiscardingEnv::Wrap(const std::string& name, leveldb::Status opened,
                                       leveldb::WritableFile** result) {
  if (!opened.ok()) return opened;
  const std::string base = BaseName(name);
  if (IsLevelDbLogName(base)) {
    *result = new DiscardingFile(*result);
  } else if (before_index_sync_ && (base.ends_with(".ldb") || base.starts_with("MANIFEST-"))) {
    *result = new SyncAfterFile(*result, &before_index_sync_);
  }
  return opened;
}

bool IsLevelDbLogName(const std::string& name) {
  if (!name.ends_with(".log") || name.size() <= 4) return false;
  return std::all_of(name.begin(), name.end() - 4, [](char c) { return c >= '0' && c <= '9'; });
}

leveldb::Status WalDiscardingEnv::NewWritableFile(const std::string& name,
                                                  leveldb::WritableFile** result) {
  return Wrap(name, target()->NewWritableFile(name, result), result);
}

leveldb::Status WalDiscardingEnv::NewAppendableFile(const std::string& name,
                                                    leveldb::WritableFile** result) {
  return Wrap(name, target()->NewAppendableFile(name, result), result);
}

}  // namespace txmq::storage
