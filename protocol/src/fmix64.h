// murmur3's 64-bit finalizer, for hashes that must not change between
// builds (the dedup filters' probes, placement scores).
#pragma once

#include <cstdint>

namespace txmq {

// Every input bit moves about half the output bits, so it spreads FNV-1a's
// (StableHash, util.h), whose low bits mix poorly. Stable forever.
inline uint64_t Fmix64(uint64_t h) {
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdull;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ull;
  h ^= h >> 33;
  return h;
}

}  // namespace txmq
