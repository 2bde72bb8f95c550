// Bytes read back from LevelDB (a damaged disk, an older or newer broker):
// every record and key decoder refuses what it cannot read, never crashes.
#include "consumer/src/inbox_records.h"
#include "producer/src/outbox_row.h"
#include "storage/src/keys.h"
#include "storage/src/records.h"
#include "storage/src/tx_records.h"
#include "tests/fuzz/fuzz_target.h"

namespace s = txmq::storage;
namespace keys = txmq::storage::keys;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  s::MessageView m;
  s::TopicRecord t;
  s::RetryRecord r;
  s::DedupRecord d;
  s::Location l;
  s::TxRecord tx;
  txmq::outbox::StoredRow row;
  (void)s::DecodeMessage(in, &m);
  (void)s::DecodeTopic(in, &t);
  (void)s::DecodeRetry(in, &r);
  (void)s::DecodeDedup(in, &d);
  (void)s::DecodeLocation(in, &l);
  (void)s::DecodeTx(in, &tx);
  (void)txmq::outbox::DecodeRow(in, &row);
  std::string_view a, b;
  uint32_t q;
  uint64_t x, y;
  (void)keys::ParseMessage(in, &a, &q, &x);
  (void)keys::ParseCursor(in, &a, &b, &q);
  (void)keys::ParseRetry(in, &a, &x, &y);
  (void)keys::ParseDedup(in, &x, &a);
  (void)keys::ParseDelayed(in, &x, &y);
  (void)keys::ParseTimedTx(in, keys::kCheck, &x, &a);
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
  return {message,
          s::EncodeTx(tx),
          s::EncodeRetry({"t", 1, 2, 3, 4, s::Location{"src", 0, 9}}),
          s::EncodeDedup({5, "t", 1, true, 7}),
          s::EncodeTopic({4, 1}),
          txmq::outbox::EncodeRow(row),
          keys::Message("orders", 2, 77),
          keys::Retry("g", 10, 11),
          keys::TimedTx(keys::kCheck, 5, "tx")};
}
