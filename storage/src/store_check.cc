#include "storage/src/store_check.h"

#include <leveldb/table.h>

#include <cinttypes>
#include <cstdio>
#include <memory>
#include <sstream>

#include "storage/src/crc32c.h"

namespace txmq::storage {

namespace {

// The live table files, from the index's own description of its levels
// (" 7:99858['a' @ 1 : 1 .. 'b' @ 4 : 1]" lines).
std::vector<std::pair<uint64_t, uint64_t>> LiveTables(leveldb::DB* db) {
  std::vector<std::pair<uint64_t, uint64_t>> out;
  std::string text;
  if (!db->GetProperty("leveldb.sstables", &text)) return out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    unsigned long long number = 0, size = 0;
    if (std::sscanf(line.c_str(), " %llu:%llu[", &number, &size) == 2)
      out.emplace_back(number, size);
  }
  return out;
}

std::string TableName(const std::string& dir, uint64_t number, const char* suffix) {
  char name[32];
  std::snprintf(name, sizeof name, "/%06" PRIu64 ".%s", number, suffix);
  return dir + name;
}

// Reads one table file whole, checksums verified; "" if it is intact,
// else what is wrong and where.
std::string CheckTable(const std::string& dir, uint64_t number, leveldb::Env* env,
                       std::string* path) {
  *path = TableName(dir, number, "ldb");
  uint64_t size = 0;
  if (!env->GetFileSize(*path, &size).ok()) {
    *path = TableName(dir, number, "sst");
    if (leveldb::Status s = env->GetFileSize(*path, &size); !s.ok()) return s.ToString();
  }
  leveldb::RandomAccessFile* raw = nullptr;
  if (leveldb::Status s = env->NewRandomAccessFile(*path, &raw); !s.ok()) return s.ToString();
  std::unique_ptr<leveldb::RandomAccessFile> file(raw);
  leveldb::Options options;
  options.env = env;
  options.paranoid_checks = true;  // the index and filter blocks too
  leveldb::Table* table_raw = nullptr;
  if (leveldb::Status s = leveldb::Table::Open(options, file.get(), size, &table_raw); !s.ok()) {
    return s.ToString() + " (its footer or index block, at the end of the file)";
  }
  std::unique_ptr<leveldb::Table> table(table_raw);
  leveldb::ReadOptions read;
  read.verify_checksums = true;
  read.fill_cache = false;
  std::unique_ptr<leveldb::Iterator> it(table->NewIterator(read));
  std::string last_good;
  for (it->SeekToFirst(); it->Valid(); it->Next()) last_good = it->key().ToString();
  if (it->status().ok()) return "";
  const uint64_t near = last_good.empty() ? 0 : table->ApproximateOffsetOf(last_good);
  return it->status().ToString() + " (in the data block after byte " + std::to_string(near) +
         " of " + std::to_string(size) + ")";
}

std::string SkipLine(const LogSkip& s) {
  char line[160];
  std::snprintf(line, sizeof line, "skip %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu32 " %" PRId64,
                s.from, s.to(), s.resume.index, s.resume.prev_crc, s.repaired_ms);
  return line;
}

}  // namespace

Status VerifyIndexTables(leveldb::DB* db, const std::string& index_dir, leveldb::Env* env) {
  leveldb::ReadOptions read;
  read.verify_checksums = true;
  read.fill_cache = false;
  std::unique_ptr<leveldb::Iterator> it(db->NewIterator(read));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
  }
  if (it->status().ok()) return Status::OK();
  const std::string what = it->status().ToString();
  it.reset();
  // Which file: each live table on its own.
  for (const auto& [number, size] : LiveTables(db)) {
    std::string path;
    const std::string problem = CheckTable(index_dir, number, env, &path);
    if (!problem.empty()) {
      return Status::Corruption("index table file " + path + " is damaged: " + problem);
    }
  }
  return Status::Corruption("the index in " + index_dir + " is damaged: " + what);
}

Result<std::vector<LogSkip>> LoadSkips(FileSystem* fs, const std::string& path) {
  std::vector<LogSkip> skips;
  if (!fs->Exists(path)) return skips;
  auto text = fs->ReadFile(path);
  if (!text.ok()) return text.status();
  auto damaged = [&](const std::string& why) {
    return Status::Corruption("the repair record '" + path + "' is damaged (" + why +
                              "); it lists the log stretches a repair gave up on. Run txmqd " +
                              "--repair again to rebuild it");
  };
  std::istringstream in(*text);
  std::string line, covered;
  if (!std::getline(in, line) || line != "txmq-repairs 1") return damaged("bad first line");
  covered = line + "\n";
  bool ended = false;
  while (std::getline(in, line)) {
    unsigned long long from = 0, to = 0, index = 0;
    unsigned prev_crc = 0, crc = 0;
    long long at_ms = 0;
    if (std::sscanf(line.c_str(), "skip %llu %llu %llu %u %lld", &from, &to, &index, &prev_crc,
                    &at_ms) == 5 &&
        !ended) {
      skips.push_back({from, {to, index, prev_crc}, at_ms});
      covered += line + "\n";
    } else if (std::sscanf(line.c_str(), "end %x", &crc) == 1 && !ended) {
      if (crc != crc32c::Value(covered)) return damaged("checksum mismatch");
      ended = true;
    } else {
      return damaged("unreadable line '" + line.substr(0, 60) + "'");
    }
  }
  if (!ended) return damaged("no end line");
  return skips;
}

Status SaveSkips(FileSystem* fs, const std::string& path, const std::vector<LogSkip>& skips) {
  std::string text = "txmq-repairs 1\n";
  for (const LogSkip& s : skips) text += SkipLine(s) + "\n";
  char end[32];
  std::snprintf(end, sizeof end, "end %08x\n", crc32c::Value(text));
  return fs->WriteFileAtomically(path, text + end);
}

}  // namespace txmq::storage
