// The file layer under the broker store's index: LevelDB's write-ahead log
// is written to nowhere.
//
// Recovery never replays that log: it deletes it and replays the commit log
// from the last checkpoint instead (broker_store.h), and a checkpoint
// flushes the memtable to synced table files. So every byte LevelDB appends
// to its log is written for nothing: with one index entry per message it
// was a fifth of all the bytes the broker wrote. The log files are still
// created (LevelDB lists and deletes them), only their contents go.
//
// And before LevelDB syncs a table file or its manifest (which makes index
// changes durable), `before_index_sync` runs: the store makes the commit
// log durable first, so that the index never names rounds a power loss
// can take from the log (under --flush async, rounds are applied to the
// index before the log's background sync reaches them).
#pragma once

#include <leveldb/env.h>

#include <functional>
#include <string>

namespace txmq::storage {

// True for a LevelDB write-ahead log's file name ("000123.log").
bool IsLevelDbLogName(const std::string& name);

// Wraps `base` (which must outlive it); everything but the contents of
// write-ahead log files goes to `base`.
class WalDiscardingEnv final : public leveldb::EnvWrapper {
 public:
  // `before_index_sync` may be empty; it runs on LevelDB's threads.
  explicit WalDiscardingEnv(leveldb::Env* base,
                            std::function<leveldb::Status()> before_index_sync = {})
      : leveldb::EnvWrapper(base), before_index_sync_(std::move(before_index_sync)) {}

  leveldb::Status NewWritableFile(const std::string& name, leveldb::WritableFile** result) override;
  leveldb::Status NewAppendableFile(const std::string& name,
                                    leveldb::WritableFile** result) override;

 private:
  leveldb::Status Wrap(const std::string& name, leveldb::Status opened,
                       leveldb::WritableFile** result);
  const std::function<leveldb::Status()> before_index_sync_;
};

}  // namespace txmq::storage
