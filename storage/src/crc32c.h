// CRC32C (Castagnoli), the checksum of every commit-log entry.
//
// Uses the SSE4.2 crc32 instruction when the CPU has it (several GB/s),
// else a table. Extend() continues a running checksum, so an entry made of
// scattered pieces is checksummed without first copying it together.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace txmq::storage::crc32c {

// The CRC32C of `data` appended to bytes whose CRC32C was `crc`.
uint32_t Extend(uint32_t crc, const char* data, size_t n);

inline uint32_t Value(const char* data, size_t n) { return Extend(0, data, n); }
inline uint32_t Value(std::string_view s) { return Extend(0, s.data(), s.size()); }

// Stored checksums are masked (as LevelDB does) so that a CRC of data that
// itself contains CRCs does not collide with a CRC of zeros.
inline uint32_t Mask(uint32_t crc) { return ((crc >> 15) | (crc << 17)) + 0xa282ead8u; }
inline uint32_t Unmask(uint32_t masked) {
  const uint32_t rot = masked - 0xa282ead8u;
  return (rot >> 17) | (rot << 15);
}

}  // namespace txmq::storage::crc32c
