// Message bodies like the peers' (bench_common.hpp): incompressible
// xorshift bytes, so no layer can compress its way to a better number, with
// the first 8 bytes overwritten per message so no two bodies are equal.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>

namespace txmq::bench {

inline std::string MakePayload(size_t size, uint64_t seed) {
  std::string body(size, '\0');
  uint64_t x = seed;
  for (size_t i = 0; i < size; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    body[i] = static_cast<char>(x & 0xff);
  }
  return body;
}

// Requires body.size() >= 8 (the command line enforces --size >= 8).
inline void StampPayload(std::string& body, uint64_t sequence) {
  std::memcpy(body.data(), &sequence, sizeof sequence);
}

}  // namespace txmq::bench
