// Stored form of transactions.
//
//   TxRecord   := version:u8 state:u8 stuck:u8 group:lp instance:lp born_ms:fixed64
//                 check_count:varint last_check_ms:fixed64 next_check_ms:fixed64
//                 last_answer:u8 last_error:lp resolved_ms:fixed64 resolved_by:lp
//                 nmsg:varint (id:lp topic:lp key:lp)*
//                 [no_producer_checks:varint]     (version 0x02; 0x01 has none: 0)
//                 [principal:lp]                  (version 0x03; older: "")
//   HalfRecord := delay_ms:varint MessageRecord
//
// The TxRecord repeats each message's id, topic and key so that listing
// transactions never reads the (large) half messages.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace txmq::storage {

enum class TxStateCode : uint8_t { kPrepared = 0, kCommitted = 1, kRolledBack = 2 };

// What the last check learned (same order as wire::CheckAnswer).
enum class CheckAnswerCode : uint8_t {
  kNone = 0,
  kCommit = 1,
  kRollback = 2,
  kUnknown = 3,
  kError = 4,
  kNoAnswer = 5,
  kNoProducer = 6,
};

struct TxMessageRef {
  std::string id;
  std::string topic;
  std::string key;
};

struct TxRecord {
  TxStateCode state = TxStateCode::kPrepared;
  bool stuck = false;
  std::string group;
  std::string instance;
  // The principal that sent the halves, when held to per-principal limits
  // ("" without CURVE and for an admin): a topic the commit creates counts
  // against its share.
  std::string principal;
  int64_t born_ms = 0;
  // Checks a producer of the group received (they count against check_max).
  uint32_t check_count = 0;
  // Check attempts in a row that found no live producer of the group to
  // ask; counted apart, never against check_max (see TransactionService).
  uint32_t no_producer_checks = 0;
  int64_t last_check_ms = 0;
  int64_t next_check_ms = 0;
  CheckAnswerCode last_answer = CheckAnswerCode::kNone;
  std::string last_error;
  int64_t resolved_ms = 0;
  std::string resolved_by;
  std::vector<TxMessageRef> messages;
};

std::string EncodeTx(const TxRecord& tx);
bool DecodeTx(std::string_view value, TxRecord* out);

}  // namespace txmq::storage
