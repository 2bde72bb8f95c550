// Small helpers every module uses: clocks, a stable hash, UUIDv7 ids.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

namespace txmq {

// Wall clock in milliseconds since the Unix epoch (stored timestamps).
inline int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

using SteadyClock = std::chrono::steady_clock;
using SteadyTime = SteadyClock::time_point;

inline std::chrono::system_clock::time_point FromEpochMs(int64_t ms) {
  return std::chrono::system_clock::time_point(std::chrono::milliseconds(ms));
}

// FNV-1a, 64 bit. Stable across builds and restarts (std::hash is not), so
// a key keeps mapping to the same queue forever.
inline uint64_t StableHash(std::string_view data) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : data) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  return h;
}

// A new RFC 9562 UUIDv7 in canonical text form (36 characters). Ids made by
// one process are strictly increasing, also within one millisecond; the
// last 62 bits come from getrandom(2) (drawn a batch per thread, afresh in
// a fork()ed child), so processes (also fork()ed ones) and threads never
// share a random stream. Thread-safe.
std::string NewUuidV7();
// The client id of one client's connection to another broker group:
// "<base>.<group>", its own name there so that no registration replaces
// another connection's; a fresh UUIDv7 when that passes 127 bytes.
inline std::string GroupClientId(const std::string& base, const std::string& group) {
  std::string id = base + "." + group;
  return id.size() > 127 ? NewUuidV7() : id;
}

// The Unix milliseconds a UUIDv7 (canonical text) was made at; -1 if `id`
// is not one.
int64_t UuidV7Millis(std::string_view id);

// `bytes` bytes from the kernel's CSPRNG, as lower-case hex: a value nobody
// can guess (a connection's routing id). Thread-safe.
std::string NewSecretHex(size_t bytes);

// Names the calling thread for top, gdb and perf (at most 15 characters).
void SetThreadName(const char* name);

// "1.5s", "250ms", "3m", "2h", "1d" -> milliseconds; -1 when unparseable.
int64_t ParseDurationMs(std::string_view text);
// 1500 -> "1.5s", 90000 -> "1m30s".
std::string FormatDurationMs(int64_t ms);

// A stored text quoted in an error or a log line: one line, at most 80
// printable characters.
std::string OneLineForLog(const std::string& text);

}  // namespace txmq
