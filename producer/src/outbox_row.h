// Stored form of outbox rows, under the local store's reserved prefix:
//
//   o/p/<seq:be64> -> Row   pending: the relay sends these in seq order
//   o/x/<seq:be64> -> Row   parked: refused for good, waits for an operator
//
//   Row := 0x01 id:lp topic:lp key:lp nprops:varint (name:lp value:lp)* body:lp
//          delay_ms:varint created_ms:fixed64 attempts:varint
//          next_attempt_ms:fixed64 last_error:lp
//
// seq is the commit order (taken inside the commit), so "claimed by state,
// in seq order" sends every committed row, also one that committed late.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "txmq/outbox.h"

namespace txmq::outbox {

std::string PendingKey(uint64_t seq);
std::string ParkedKey(uint64_t seq);
std::string PendingPrefix();
std::string ParkedPrefix();
// The seq of a pending or parked key.
bool ParseSeq(std::string_view key, std::string_view prefix, uint64_t* seq);

struct StoredRow {
  Message message;  // message.id is the row id
  int64_t created_ms = 0;
  uint32_t attempts = 0;
  int64_t next_attempt_ms = 0;
  std::string last_error;
};

std::string EncodeRow(const StoredRow& row);
bool DecodeRow(std::string_view value, StoredRow* row);

OutboxRow ToPublic(const StoredRow& row, uint64_t seq, bool parked);

// Calls fn(seq, row) for every pending (or parked) row, in seq order.
void ForEachRow(LocalStore& store, bool parked,
                const std::function<void(uint64_t seq, StoredRow row)>& fn);

}  // namespace txmq::outbox
