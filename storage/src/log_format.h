// Layout of the commit log: segment files of entries, one entry per write
// round.
//
//   <dir>/<base:20 digits>.seg   a preallocated file of `segment_bytes`;
//                                `base` is the log position of its first
//                                byte. An entry never straddles two
//                                segments: one that does not fit starts the
//                                next segment, at base + segment size.
//
//   Entry  := Header Payload
//   Header := magic:u32 crc:u32 length:u32 type:u8 format:u8 flags:u16
//             epoch:u64 index:u64 prev_crc:u32 segment_kib:u32 time_ms:i64
//             (48 bytes, little-endian)
//     magic     "TXLG"
//     crc       masked CRC32C of header bytes [8, 48) and the payload
//     length    payload bytes
//     type      kRoundEntry
//     flags     bit 0 kPreviousSynced: every entry before this one was durable
//               when it was written (flush sync), so if one of them is
//               damaged now, that is not a torn write but damage
//     epoch     the leader epoch that wrote it (1 on a single broker)
//     index     1, 2, 3, ... without gaps
//     prev_crc  the crc field of the entry before it (0 before the first):
//               a chain, so stale bytes after a truncation never read as
//               the entry that follows
//     segment_kib  the size of the segment file the entry was written into,
//               in KiB: a segment file found shorter was truncated
//     time_ms   broker time when the round was sealed (retention)
//   Payload := Record*          (the broker store's records; opaque here)
//
// Format 1 (development builds before records carried their own CRC) had
// a reserved field where segment_kib is; it is refused, not misread.
//
// A log position is a byte offset in the log as a whole: segment base +
// offset in the segment. Positions are stable for the life of the data.
#pragma once

#include <cstdint>
#include <cstring>
#include <string_view>

namespace txmq::storage::log {

inline constexpr uint32_t kMagic = 0x474c5854;  // "TXLG" little-endian
inline constexpr size_t kHeaderBytes = 48;
inline constexpr uint8_t kFormat = 2;
inline constexpr uint8_t kRoundEntry = 1;
inline constexpr uint16_t kPreviousSynced = 1;

struct Header {
  uint32_t crc = 0;
  uint32_t length = 0;
  uint8_t type = kRoundEntry;
  uint16_t flags = 0;
  uint64_t epoch = 0;
  uint64_t index = 0;
  uint32_t prev_crc = 0;
  uint32_t segment_kib = 0;
  int64_t time_ms = 0;
};

// Writes the header (crc as given) into `out` (kHeaderBytes).
inline void EncodeHeader(const Header& h, char* out) {
  auto put32 = [&](size_t at, uint32_t v) { std::memcpy(out + at, &v, 4); };
  auto put64 = [&](size_t at, uint64_t v) { std::memcpy(out + at, &v, 8); };
  put32(0, kMagic);
  put32(4, h.crc);
  put32(8, h.length);
  out[12] = static_cast<char>(h.type);
  out[13] = static_cast<char>(kFormat);
  std::memcpy(out + 14, &h.flags, 2);
  put64(16, h.epoch);
  put64(24, h.index);
  put32(32, h.prev_crc);
  put32(36, h.segment_kib);
  put64(40, static_cast<uint64_t>(h.time_ms));
}

// False when `in` (at least kHeaderBytes) does not start with an entry
// header of this format.
inline bool DecodeHeader(const char* in, Header* h) {
  auto get32 = [&](size_t at) {
    uint32_t v;
    std::memcpy(&v, in + at, 4);
    return v;
  };
  auto get64 = [&](size_t at) {
    uint64_t v;
    std::memcpy(&v, in + at, 8);
    return v;
  };
  if (get32(0) != kMagic || static_cast<uint8_t>(in[13]) != kFormat) return false;
  h->crc = get32(4);
  h->length = get32(8);
  h->type = static_cast<uint8_t>(in[12]);
  std::memcpy(&h->flags, in + 14, 2);
  h->epoch = get64(16);
  h->index = get64(24);
  h->prev_crc = get32(32);
  h->segment_kib = get32(36);
  h->time_ms = static_cast<int64_t>(get64(40));
  return true;
}

// The format byte of what looks like an entry header (magic matches), or
// 0 when `in` (at least kHeaderBytes) does not start with one.
inline uint8_t HeaderFormat(const char* in) {
  uint32_t magic;
  std::memcpy(&magic, in, 4);
  return magic == kMagic ? static_cast<uint8_t>(in[13]) : 0;
}

// Bytes of the header the crc covers (everything after magic and crc).
inline std::string_view CoveredHeader(const char* header) { return {header + 8, kHeaderBytes - 8}; }

}  // namespace txmq::storage::log
