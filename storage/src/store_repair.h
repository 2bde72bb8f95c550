// What `txmqd --repair` found and did: the damaged stretches of log, the
// index rebuild, and every message, half message and delayed message that
// could not be read back, with what is known of it.
//
// Thread safety: a value; built by BrokerStore::Open on the caller's
// thread.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "storage/src/commit_log.h"

namespace txmq::storage {

struct LostMessage {
  std::string id;           // "" when no record of it is left
  bool id_verified = true;  // false: read from a damaged record
  std::string topic;        // "" when unknown (then topic_id says)
  uint32_t topic_id = 0;
  uint32_t queue = 0;
  uint64_t offset = 0;
  uint64_t position = 0;  // in the log; 0 when the index had none
  std::string why;
};

struct LostHalf {  // a message of an open transaction
  std::string tx_id;
  uint32_t index = 0;
  uint64_t position = 0;
  std::string why;
};

struct LostDelayed {
  int64_t due_ms = 0;
  uint64_t seq = 0;
  std::string id;
  uint64_t position = 0;
  std::string why;
};

struct RepairReport {
  std::string data_dir;
  int64_t repaired_ms = 0;
  std::vector<LogDamage> log_damage;
  // The index was rebuilt from the log (and what LevelDB salvaged of it).
  bool index_rebuilt = false;
  std::string index_problem;
  std::vector<std::string> index_notes;
  uint64_t replayed_entries = 0;
  std::vector<LostMessage> messages;
  std::vector<LostHalf> halves;
  std::vector<LostDelayed> delayed;
  // Damaged rounds after the checkpoint whose index operations (cursor
  // moves, retries, transaction records, topics) could not be recovered.
  std::vector<uint64_t> lost_operations;
  // Consumer positions moved back because what they had read is gone.
  std::vector<std::string> cursor_resets;
  // Salvaged records of damaged rounds that were indexed again.
  uint64_t salvaged_records = 0;

  bool found_damage() const {
    return !log_damage.empty() || index_rebuilt || !messages.empty() || !halves.empty() ||
           !delayed.empty();
  }
  // For people: one line each, the summary first.
  std::vector<std::string> Lines() const;
  // For scripts.
  std::string ToJson() const;
};

}  // namespace txmq::storage
