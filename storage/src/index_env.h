// The file layer under the broker store's index: LevelDB's write-ahead log
// is written to nowhere.
//
// Recovery never replays that log: it deletes it and replays the commit log
// from the last checkpoint instead (broker_store.h), and a checkpoint
// flushes the memtable to synced table files. So every byte LevelDB appends
// to its log is written for nothing: with one index entry per message it
// was a fifth of all the bytes the broker wrote. The log files are still
// created (LevelDB lists and deletes them), only their contents go.
#pragma once

#include <leveldb/env.h>

#include <string>

namespace txmq::storage {

// True for a LevelDB write-ahead log's file name ("000123.log").
bool IsLevelDbLogName(const std::string& name);

// Wraps `base` (which must outlive it); everything but the contents of
// write-ahead log files goes to `base`.
class WalDiscardingEnv final : public leveldb::EnvWrapper {
 public:
  explicit WalDiscardingEnv(leveldb::Env* base) : leveldb::EnvWrapper(base) {}

  leveldb::Status NewWritableFile(const std::string& name, leveldb::WritableFile** result) override;
  leveldb::Status NewAppendableFile(const std::string& name,
                                    leveldb::WritableFile** result) override;
};

}  // namespace txmq::storage
