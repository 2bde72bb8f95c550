#include "storage/src/db.h"

#include <filesystem>
#include <system_error>

#include "storage/src/fd_shortage.h"

namespace txmq::storage {

Status FromLevelDb(const leveldb::Status& s, const std::string& context) {
  if (s.ok()) return Status::OK();
  std::string msg = context + ": " + s.ToString();
  if (s.IsNotFound()) return Status::NotFound(msg);
  if (s.IsCorruption()) return Status::Corruption(msg);
  if (s.IsInvalidArgument()) return Status::InvalidArgument(msg);
  if (IsDescriptorShortage(s)) return Status::ResourceExhausted(msg + " (out of file descriptors)");
  return Status::Internal(msg);
}

Result<std::unique_ptr<Db>> Db::Open(const std::string& path, const DbOptions& options) {
  std::error_code ec;
  if (options.create_if_missing) {
    std::filesystem::create_directories(path, ec);
    if (ec) {
      return Status::InvalidArgument("cannot create data directory '" + path +
                                     "': " + ec.message());
    }
  }
  auto db = std::unique_ptr<Db>(new Db());
  db->path_ = path;
  db->cache_.reset(leveldb::NewLRUCache(options.block_cache_bytes));
  db->filter_.reset(leveldb::NewBloomFilterPolicy(10));
  leveldb::Options lo;
  lo.create_if_missing = options.create_if_missing;
  lo.write_buffer_size = options.write_buffer_size;
  lo.block_cache = db->cache_.get();
  lo.filter_policy = db->filter_.get();
  lo.max_file_size = options.max_file_size;
  lo.max_open_files = options.max_open_files;
  lo.compression = options.compress ? leveldb::kSnappyCompression : leveldb::kNoCompression;
  lo.paranoid_checks = options.paranoid_checks;
  if (options.env != nullptr) lo.env = options.env;
  leveldb::DB* raw = nullptr;
  leveldb::Status s = leveldb::DB::Open(lo, path, &raw);
  if (!s.ok()) {
    std::string text = s.ToString();
    if (text.find("/LOCK") != std::string::npos && !IsDescriptorShortage(s)) {
      return Status::Unavailable(
          "data directory '" + path +
          "' is in use by another process (its LevelDB lock is held): " + text);
    }
    return FromLevelDb(s, "opening LevelDB at '" + path + "'");
  }
  db->db_.reset(raw);
  return db;
}

Db::~Db() {
  db_.reset();  // the DB uses cache_ and filter_ until it is closed
}

}  // namespace txmq::storage
