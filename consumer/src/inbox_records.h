// Stored form of inbox records, under the local store's reserved prefix:
//
//   i/r/<group> 0x00 <dedup key>                 -> state:u8 time_ms:fixed64 note:lp
//   i/e/<time_ms:be64><group> 0x00 <dedup key>   -> ""   retention index
#pragma once

#include <optional>
#include <string>

#include "storage/src/local_store_impl.h"
#include "txmq/inbox.h"

namespace txmq::inbox {

std::string RecordKey(const std::string& group, const std::string& dedup_key);
// The record, none, or the error that kept it from being read (an I/O
// error, damage: not the same as none, which runs a handler again).
Result<std::optional<InboxRecord>> Read(LocalStore& store, const std::string& record_key);
// Puts the record and its retention index entry into `txn`, stamped with
// `at_ms` (now unless given).
void Write(LocalTxn& txn, const std::string& group, const std::string& dedup_key, InboxState state,
           const std::string& note, int64_t at_ms = 0);

}  // namespace txmq::inbox
