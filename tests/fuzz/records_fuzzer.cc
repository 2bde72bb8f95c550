// Bytes read back from LevelDB (a damaged disk, an older or newer broker):
// every record and key decoder refuses what it cannot read, never crashes,
// and what it accepts re-encodes to the same meaning.
#include <cstdio>
#include <cstdlib>

#include "consumer/src/inbox_records.h"
#include "producer/src/outbox_row.h"
#include "storage/src/records.h"
#include "storage/src/store_format.h"
#include "storage/src/tx_records.h"
#include "tests/fuzz/fuzz_target.h"

namespace s = txmq::storage;
namespace store = txmq::storage::store;

namespace {

// A decoder may refuse, but what it accepts must mean one thing: encoding
// the decoded value and decoding that again gives the same bytes once more
// (nothing dropped or invented on the way). Keys must also be canonical:
// a key that parses is exactly the key built from its parts, or two byte
// strings would name one entry.
[[noreturn]] void Inconsistent(const char* what, std::string_view in) {
  std::fprintf(stderr, "records fuzzer: %s is not consistent for a %zu-byte input\n", what,
               in.size());
  std::abort();
}

template <typename T, typename Decode, typename Encode>
void CheckStable(const char* what, std::string_view in, Decode decode, Encode encode) {
  T first;
  if (!decode(in, &first)) return;
  const std::string once = encode(first);
  T second;
  if (!decode(once, &second)) Inconsistent(what, in);
  if (encode(second) != once) Inconsistent(what, in);
}

// A record body, re-encoded through the whole-record framing.
template <typename Body, typename Decode, typename Append>
void CheckRecordBody(const char* what, std::string_view body, Decode decode, Append append) {
  auto encode = [&](const Body& b) {
    std::string framed;
    append(b, &framed);
    std::vector<store::RecordView> records;
    if (!store::ParseRecords(framed, &records) || records.size() != 1) Inconsistent(what, body);
    return std::string(records[0].body);
  };
  CheckStable<Body>(what, body, decode, encode);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  CheckStable<s::MessageView>("message", in, s::DecodeMessage, [](const s::MessageView& m) {
    std::string out;
    s::EncodeMessage(m, &out);
    return out;
  });
  CheckStable<s::RetryRecord>("retry record", in, s::DecodeRetry, s::EncodeRetry);
  CheckStable<s::TxRecord>("transaction record", in, s::DecodeTx, s::EncodeTx);
  CheckStable<txmq::outbox::StoredRow>("outbox row", in, txmq::outbox::DecodeRow,
                                       txmq::outbox::EncodeRow);
  // The store's records and index values.
  std::vector<store::RecordView> records;
  if (store::ParseRecords(in, &records)) {
    for (const auto& rec : records) {
      CheckRecordBody<store::MessageBody>("message record", rec.body, store::DecodeMessageBody,
                                          store::AppendMessageRecord);
      CheckRecordBody<store::HalfBody>("half record", rec.body, store::DecodeHalfBody,
                                       store::AppendHalfRecord);
      CheckRecordBody<store::DelayedBody>("delayed record", rec.body, store::DecodeDelayedBody,
                                          store::AppendDelayedRecord);
    }
  }
  CheckStable<store::QueueRun>(
      "queue run", in,
      [](std::string_view v, store::QueueRun* r) { return store::DecodeQueueRun(0, v, r); },
      store::EncodeQueueRun);
  CheckStable<store::IdEntry>("id entry", in, store::DecodeIdEntry, store::EncodeIdEntry);
  CheckStable<store::TopicEntry>("topic entry", in, store::DecodeTopicEntry,
                                 store::EncodeTopicEntry);
  CheckStable<store::GroupEntry>("group entry", in, store::DecodeGroupEntry,
                                 store::EncodeGroupEntry);
  std::string_view a, b;
  uint32_t q, t;
  uint64_t x, y;
  int64_t ms;
  if (store::ParseQueueRunKey(in, &t, &q, &x) && store::QueueRunKey(t, q, x) != in) {
    Inconsistent("queue run key", in);
  }
  if (store::ParseRunByPositionKey(in, &x, &t, &q, &y) &&
      store::RunByPositionKey(x, t, q, y) != in) {
    Inconsistent("run-by-position key", in);
  }
  if (store::ParseCursorKey(in, &a, &b, &q) && store::CursorKey(a, b, q) != in) {
    Inconsistent("cursor key", in);
  }
  if (store::ParseRetryKey(in, &a, &ms, &y) && store::RetryKey(a, ms, y) != in) {
    Inconsistent("retry key", in);
  }
  if (store::ParseIdKey(in, &x, &a) && store::IdKey(x, a) != in) Inconsistent("id key", in);
  if (store::ParseDelayedKey(in, &ms, &y) && store::DelayedKey(ms, y) != in) {
    Inconsistent("delayed key", in);
  }
  if (store::ParseHalfKey(in, &a, &q) && store::HalfKey(a, q) != in) Inconsistent("half key", in);
  if (store::ParseTimedTxKey(in, store::kCheck, &ms, &a) &&
      store::TimedTxKey(store::kCheck, ms, a) != in) {
    Inconsistent("check key", in);
  }
  return 0;
}

std::vector<std::string> FuzzSeeds() {
  s::MessageView m;
  m.id = "id";
  m.topic = "orders";
  m.key = "k";
  m.properties = {{"a", "1"}};
  m.body = "body";
  std::string message;
  s::EncodeMessage(m, &message);
  s::TxRecord tx;
  tx.group = "g";
  tx.messages = {{"m", "t", "k"}};
  txmq::outbox::StoredRow row;
  row.message = {.topic = "t", .body = "x", .id = "r"};
  std::string payload;
  store::AppendMessageRecord({1, 2, 3, store::kFlagIndexed, m}, &payload);
  store::AppendHalfRecord({"tx", 0, 5, m}, &payload);
  return {message,
          payload,
          s::EncodeTx(tx),
          s::EncodeRetry({"t", 1, 2, 3, 4, s::Location{"src", 0, 9}}),
          store::EncodeQueueRun({7, {100, 200, 300}}),
          store::EncodeIdEntry({1, 2, true, 3, 4}),
          store::EncodeTopicEntry({4, 1, 9, "svc"}),
          store::EncodeGroupEntry({9, "svc"}),
          txmq::outbox::EncodeRow(row),
          store::QueueRunKey(2, 1, 77),
          store::RetryKey("g", 10, 11),
          store::TimedTxKey(store::kCheck, 5, "tx"),
          store::RunByPositionKey(4096, 2, 1, 77),
          store::CursorKey("g", "orders", 3),
          store::IdKey(9, "id-1"),
          store::DelayedKey(1000, 4),
          store::HalfKey("tx", 2)};
}
