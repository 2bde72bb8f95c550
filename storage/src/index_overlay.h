// Index keys that live briefly, held in memory in front of LevelDB.
//
// A transaction puts its half's reference, its check schedule and its
// record, and deletes or rewrites all three when it ends, usually within
// milliseconds. Written to LevelDB, every one of those versions goes to a
// level-0 table and is compacted away later: under a window of
// transactions LevelDB's compaction took as much CPU as the broker's core
// thread. Here a put followed by its delete before the next flush never
// reaches LevelDB, and a record rewritten reaches it once.
//
// The overlay is not durable, and needs not be: like the rest of the
// index it is derived from the log. A checkpoint writes the overlay into
// LevelDB before LevelDB's own flush, so the cursor it records is covered
// by the table files; after a crash recovery replays the log from there
// straight into LevelDB (BrokerStore::Recover), as before.
//
// A delete may drop a put only if LevelDB holds no older value of the key
// that the delete must hide. The overlay knows that for a key whose first
// put here was marked new by the writer (no live value in the index: a
// new half, a new schedule slot); any other key gets a tombstone.
//
// Thread safety: every method locks mu_. The storage thread applies,
// the checkpoint thread seals and writes, any thread reads.
#pragma once

#include <leveldb/write_batch.h>

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace txmq::storage {

class IndexOverlay {
 public:
  // Whether keys like `key` (by keyspace) are held here.
  static bool Holds(std::string_view key);

  // `is_new`: the index holds no live value for `key` (the writer knows).
  void Put(std::string_view key, std::string_view value, bool is_new);
  void Delete(std::string_view key);

  enum class Found { kNotHere, kValue, kDeleted };
  // kNotHere: ask LevelDB.
  Found Get(std::string_view key, std::string* value) const;

  // What the overlay says of the keys in [from, end): a value, or nullopt
  // for a key deleted here (hide LevelDB's), in key order.
  using Entry = std::pair<std::string, std::optional<std::string>>;
  std::vector<Entry> Range(std::string_view from, std::string_view end) const;

  // Moves what was applied so far aside and returns it as batches for
  // LevelDB of about `batch_bytes` each (a small batch lets the storage
  // thread's own index writes in between); reads still see it until
  // DropSealed. One seal at a time (the checkpoint thread). After a
  // failed write (no DropSealed) the next Seal returns it again, with
  // what was applied since over it.
  std::vector<leveldb::WriteBatch> Seal(size_t batch_bytes);
  // The sealed batch is in LevelDB now.
  void DropSealed();

  // Bytes applied since the last seal: keys, values and a map entry's
  // own cost.
  size_t bytes() const;
  struct Stats {
    uint64_t dropped = 0;  // puts deleted before they reached LevelDB
    uint64_t written = 0;  // puts and tombstones handed to LevelDB
  };
  Stats stats() const;

 private:
  struct Value {
    std::optional<std::string> value;  // nullopt: a tombstone
    bool index_may_hold = true;        // LevelDB may hold an older value
  };
  using Map = std::map<std::string, Value, std::less<>>;
  // A map node with its key and value strings, beyond their bytes.
  static constexpr size_t kEntryOverhead = 128;
  // What LevelDB will hold for `key` once sealed_ is written: true or
  // false when sealed_ names it, nullopt when only LevelDB knows.
  std::optional<bool> AfterSealed(std::string_view key) const;

  mutable std::mutex mu_;
  Map current_;
  Map sealed_;
  size_t bytes_ = 0;
  Stats stats_;
};

}  // namespace txmq::storage
