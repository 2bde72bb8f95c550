// What the files of BrokerStore (broker_store.cc, broker_store_recovery.cc,
// broker_store_reads.cc) share, and nothing else uses.
#pragma once

#include <leveldb/slice.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "protocol/src/util.h"
#include "storage/src/coding.h"
#include "storage/src/commit_log.h"

namespace txmq::storage::detail {

// The file holding the last checkpoint (EncodeCheckpoint's line).
inline constexpr const char* kCheckpointFile = "CHECKPOINT";

// The checkpoint's one line: where the index is known complete in the log
// (position, entry index, the chain value there), with its own CRC32C.
std::string EncodeCheckpoint(const LogCursor& c);
// False when `text` is not such a line or its CRC does not match.
bool DecodeCheckpoint(const std::string& text, LogCursor* c);

inline int64_t MicrosSince(SteadyTime start) {
  return std::chrono::duration_cast<std::chrono::microseconds>(SteadyClock::now() - start).count();
}

inline std::string Fixed64(uint64_t v) {
  std::string s;
  PutFixed64(&s, v);
  return s;
}

inline leveldb::Slice AsSlice(std::string_view s) { return {s.data(), s.size()}; }

}  // namespace txmq::storage::detail
