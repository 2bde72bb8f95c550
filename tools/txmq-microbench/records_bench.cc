// The stored record formats (storage/src/records.h, tx_records.h): every
// send appends a store record to its round, every pull decodes
// MessageRecords, and every transaction step rewrites its TxRecord.
#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "storage/src/records.h"
#include "storage/src/store_format.h"
#include "storage/src/tx_records.h"

namespace txmq::storage {
namespace {

struct SampleMessage {
  explicit SampleMessage(size_t body_bytes) : body(body_bytes, 'x') {
    view.id = "01a21cbb-265c-73f9-bf84-168086ecab9a";
    view.topic = "order-created";
    view.key = "order-42";
    view.properties = {{"source", "checkout"}, {"trace", "4bf92f3577b34da6a3ce929d0e0e4736"}};
    view.body = body;
    view.born_ms = view.stored_ms = 1'764'000'000'000;
  }
  std::string body;
  MessageView view;
};

void BM_EncodeMessageRecord(benchmark::State& state) {
  SampleMessage m(static_cast<size_t>(state.range(0)));
  std::string out;
  for (auto _ : state) {
    out.clear();
    EncodeMessage(m.view, &out);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * state.range(0));
}
BENCHMARK(BM_EncodeMessageRecord)->Arg(128)->Arg(1024)->Arg(64 * 1024);

void BM_DecodeMessageRecord(benchmark::State& state) {
  SampleMessage m(static_cast<size_t>(state.range(0)));
  std::string stored;
  EncodeMessage(m.view, &stored);
  MessageView out;
  for (auto _ : state) {
    bool ok = DecodeMessage(stored, &out);
    benchmark::DoNotOptimize(ok);
    benchmark::DoNotOptimize(out.body.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * state.range(0));
}
BENCHMARK(BM_DecodeMessageRecord)->Arg(128)->Arg(1024)->Arg(64 * 1024);

// A send's whole store work per message: its record appended to the round
// and, after the fsync, parsed again to derive the index entries.
void BM_AppendStoreMessageRecord(benchmark::State& state) {
  SampleMessage m(static_cast<size_t>(state.range(0)));
  const store::MessageBody record{.topic_id = 7,
                                  .queue = 3,
                                  .offset = 123456789,
                                  .flags = store::kFlagIndexed,
                                  .message = m.view};
  std::string round;
  for (auto _ : state) {
    round.clear();
    store::AppendMessageRecord(record, &round);
    benchmark::DoNotOptimize(round.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * state.range(0));
}
BENCHMARK(BM_AppendStoreMessageRecord)->Arg(128)->Arg(1024)->Arg(64 * 1024);

// Arg: messages in one round (the group commit's batch).
void BM_ParseStoreRound(benchmark::State& state) {
  SampleMessage m(1024);
  std::string round;
  for (int64_t i = 0; i < state.range(0); ++i) {
    store::AppendMessageRecord({.topic_id = 7,
                                .queue = 3,
                                .offset = static_cast<uint64_t>(i),
                                .flags = store::kFlagIndexed,
                                .message = m.view},
                               &round);
  }
  std::vector<store::RecordView> records;
  store::MessageBody body;
  for (auto _ : state) {
    records.clear();
    bool ok = store::ParseRecords(round, &records);
    for (const store::RecordView& r : records) ok &= store::DecodeMessageBody(r.body, &body);
    benchmark::DoNotOptimize(ok);
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()) * state.range(0));
}
BENCHMARK(BM_ParseStoreRound)->Arg(1)->Arg(64);

TxRecord SampleTx(int messages) {
  TxRecord tx;
  tx.group = "order-service";
  tx.instance = "01a21cbb-265b-73c6-8c77-9efb2120e4f5";
  tx.born_ms = 1'764'000'000'000;
  tx.check_count = 2;
  tx.last_check_ms = tx.born_ms + 6000;
  tx.next_check_ms = tx.born_ms + 16000;
  tx.last_answer = CheckAnswerCode::kUnknown;
  tx.last_error = "local transaction still running";
  for (int i = 0; i < messages; ++i) {
    tx.messages.push_back({"01a21cbb-265c-73f9-bf84-16808600" + std::to_string(1000 + i),
                           "order-created", "order-" + std::to_string(i)});
  }
  return tx;
}

// Arg: messages in the transaction.
void BM_EncodeTxRecord(benchmark::State& state) {
  const TxRecord tx = SampleTx(static_cast<int>(state.range(0)));
  for (auto _ : state) benchmark::DoNotOptimize(EncodeTx(tx));
}
BENCHMARK(BM_EncodeTxRecord)->Arg(1)->Arg(16);

void BM_DecodeTxRecord(benchmark::State& state) {
  const std::string stored = EncodeTx(SampleTx(static_cast<int>(state.range(0))));
  TxRecord out;
  for (auto _ : state) {
    bool ok = DecodeTx(stored, &out);
    benchmark::DoNotOptimize(ok);
  }
}
BENCHMARK(BM_DecodeTxRecord)->Arg(1)->Arg(16);

}  // namespace
}  // namespace txmq::storage
