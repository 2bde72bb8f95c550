// Bytes read back from LevelDB (a damaged disk, an older or newer broker):
// every record and key decoder refuses what it cannot read, never crashes.
#include "consumer/src/inbox_records.h"
#include "producer/src/outbox_row.h"
#include "storage/src/records.h"
#include "storage/src/store_format.h"
#include "storage/src/tx_records.h"
#include "tests/fuzz/fuzz_target.h"

namespace s = txmq::storage;
namespace store = txmq::storage::store;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  s::MessageView m;
  s::RetryRecord r;
  s::TxRecord tx;
  txmq::outbox::StoredRow row;
  (void)s::DecodeMessage(in, &m);
  (void)s::DecodeRetry(in, &r);
  (void)s::DecodeTx(in, &tx);
  (void)txmq::outbox::DecodeRow(in, &row);
  // The store's records and index values.
  std::vector<store::RecordView> records;
  if (store::ParseRecords(in, &records)) {
    for (const auto& rec : records) {
      store::MessageBody mb;
      store::HalfBody hb;
      store::DelayedBody db;
      (void)store::DecodeMessageBody(rec.body, &mb);
      (void)store::DecodeHalfBody(rec.body, &hb);
      (void)store::DecodeDelayedBody(rec.body, &db);
    }
  }
  store::QueueRun run;
  store::IdEntry id;
  store::TopicEntry topic;
  (void)store::DecodeQueueRun(0, in, &run);
  (void)store::DecodeIdEntry(in, &id);
  (void)store::DecodeTopicEntry(in, &topic);
  std::string_view a, b;
  uint32_t q, t;
  uint64_t x, y;
  int64_t ms;
  (void)store::ParseQueueRunKey(in, &t, &q, &x);
  (void)store::ParseRunByPositionKey(in, &x, &t, &q, &y);
  (void)store::ParseCursorKey(in, &a, &b, &q);
  (void)store::ParseRetryKey(in, &a, &ms, &y);
  (void)store::ParseIdKey(in, &x, &a);
  (void)store::ParseDelayedKey(in, &ms, &y);
  (void)store::ParseHalfKey(in, &a, &q);
  (void)store::ParseTimedTxKey(in, store::kCheck, &ms, &a);
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
          store::EncodeTopicEntry({4, 1, 9}),
          txmq::outbox::EncodeRow(row),
          store::QueueRunKey(2, 1, 77),
          store::RetryKey("g", 10, 11),
          store::TimedTxKey(store::kCheck, 5, "tx")};
}
