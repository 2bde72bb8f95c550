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
//
// What this store committed, kept after the row is sent (for the
// compensation fence, producer/src/origin_fence.h):
//
//   o/r/<message id>                 -> Record
//   o/e/<time_ms:be64><message id>   -> ""    retention index (records go
//                                             after OutboxOptions::record_horizon)
//   Record := state:u8 ('S' committed with its business rows |
//                       'F' fenced: a compensation came first, never commit)
//             time_ms:fixed64 note:lp
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
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

inline constexpr char kCommitted = 'S';
inline constexpr char kFenced = 'F';
inline constexpr std::string_view kRecordTable = "o/";  // for LocalStore retention

struct Record {
  char state = kCommitted;
  int64_t time_ms = 0;
  std::string note;
};

std::string RecordKey(std::string_view message_id);
// The record, none, or the error that kept it from being read (an I/O
// error, damage: not the same as none, which a compensation would fence).
Result<std::optional<Record>> ReadRecord(LocalStore& store, std::string_view message_id);
// Puts the record of `message_id` and its retention index entry into `txn`.
void PutRecord(LocalTxn& txn, std::string_view message_id, char state, std::string_view note);

// Operator actions, by row id; each returns the row's seq and writes one
// audit line naming `operator_name` (kInProcess: the service's own call).
// RequeueRow moves a parked row back to pending (attempts reset) under its
// old seq; DeleteRow deletes a pending or (`parked_only`) only a parked row.
inline constexpr char kInProcess[] = "(in-process call)";
Result<uint64_t> RequeueRow(LocalStore& store, const std::string& id,
                            const std::string& operator_name);
Result<uint64_t> DeleteRow(LocalStore& store, const std::string& id, bool parked_only,
                           const std::string& operator_name);

// Calls fn(seq, row) for every pending (or parked) row, in seq order.
void ForEachRow(LocalStore& store, bool parked,
                const std::function<void(uint64_t seq, StoredRow row)>& fn);

}  // namespace txmq::outbox
