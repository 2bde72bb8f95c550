#include <gtest/gtest.h>

#include "storage/src/coding.h"
#include "storage/src/records.h"
#include "storage/src/store_format.h"
#include "storage/src/tx_records.h"

namespace txmq::storage {
namespace {

TEST(Keys, QueueRunKeysSortByOffsetAndGroupByQueue) {
  std::string prev = store::QueueRunKey(3, 1, 0);
  for (uint64_t off : {1ull, 2ull, 255ull, 256ull, 65535ull, 65536ull, 1ull << 40}) {
    std::string next = store::QueueRunKey(3, 1, off);
    EXPECT_LT(prev, next) << off;
    prev = next;
  }
  EXPECT_LT(store::QueueRunKey(3, 1, 999), store::QueueRunKey(3, 2, 0));
  EXPECT_LT(store::QueueRunKey(3, 9, 9), store::QueueRunKey(4, 0, 0));
  EXPECT_TRUE(store::QueueRunKey(3, 1, 5).starts_with(store::QueueRunPrefix(3, 1)));
  EXPECT_FALSE(store::QueueRunKey(3, 2, 5).starts_with(store::QueueRunPrefix(3, 1)));
}

TEST(Keys, RoundTrip) {
  std::string_view topic, group;
  uint32_t queue, topic_id;
  uint64_t offset, id;
  int64_t due;
  const std::string run_key = store::QueueRunKey(7, 3, 77);
  ASSERT_TRUE(store::ParseQueueRunKey(run_key, &topic_id, &queue, &offset));
  EXPECT_EQ(topic_id, 7u);
  EXPECT_EQ(queue, 3u);
  EXPECT_EQ(offset, 77u);
  const std::string cursor_key = store::CursorKey("g", "t", 2);
  ASSERT_TRUE(store::ParseCursorKey(cursor_key, &group, &topic, &queue));
  EXPECT_EQ(group, "g");
  EXPECT_EQ(topic, "t");
  EXPECT_EQ(queue, 2u);
  const std::string retry_key = store::RetryKey("g", 123456, 9);
  ASSERT_TRUE(store::ParseRetryKey(retry_key, &group, &due, &id));
  EXPECT_EQ(due, 123456);
  EXPECT_EQ(id, 9u);
  EXPECT_FALSE(store::ParseQueueRunKey(std::string_view("Q"), &topic_id, &queue, &offset));
  const std::string longer = store::QueueRunKey(1, 1, 1) + "x";
  EXPECT_FALSE(store::ParseQueueRunKey(longer, &topic_id, &queue, &offset));
}

TEST(Keys, SchedulesSortByTime) {
  EXPECT_LT(store::RetryKey("g", 1000, 50), store::RetryKey("g", 1001, 1));
  EXPECT_LT(store::DelayedKey(5, 100), store::DelayedKey(6, 1));
  EXPECT_LT(store::RunByPositionKey(10, 9, 9, 9), store::RunByPositionKey(11, 0, 0, 0));
  EXPECT_LT(store::IdKey(5, "zzz"), store::IdKey(6, "aaa"));
}

TEST(Keys, PrefixEndBoundsAPrefix) {
  EXPECT_EQ(store::PrefixEnd("ab"), "ac");
  EXPECT_EQ(store::PrefixEnd(std::string("a\xff", 2)), "b");
  EXPECT_EQ(store::PrefixEnd(std::string("\xff\xff", 2)), "");
}

TEST(StoreRecords, QueueRunsIdsAndTopicsRoundTrip) {
  store::QueueRun run{40, {1000, 1100, 5000, 5001}};
  store::QueueRun back;
  ASSERT_TRUE(store::DecodeQueueRun(40, store::EncodeQueueRun(run), &back));
  EXPECT_EQ(back.positions, run.positions);
  EXPECT_EQ(back.end_offset(), 44u);
  EXPECT_FALSE(store::DecodeQueueRun(40, "", &back));
  store::IdEntry id{3, 1, true, 99, 12345};
  store::IdEntry id_back;
  ASSERT_TRUE(store::DecodeIdEntry(store::EncodeIdEntry(id), &id_back));
  EXPECT_EQ(id_back.offset, 99u);
  EXPECT_EQ(id_back.stored_ms, 12345);
  store::TopicEntry t{5, 8, 777, "svc-orders"};
  store::TopicEntry t_back;
  ASSERT_TRUE(store::DecodeTopicEntry(store::EncodeTopicEntry(t), &t_back));
  EXPECT_EQ(t_back.id, 5u);
  EXPECT_EQ(t_back.queues, 8u);
  EXPECT_EQ(t_back.creator, "svc-orders");
}

TEST(StoreRecords, TopicEntriesOfVersionOneStillReadWithNoCreator) {
  // What a broker before the creator field wrote: version 1, no creator.
  std::string v2 = store::EncodeTopicEntry({5, 8, 777, "svc-orders"});
  std::string v1 = v2.substr(0, v2.size() - 1 - std::string("svc-orders").size());
  v1[0] = 1;
  store::TopicEntry back{0, 0, 0, "stale"};
  ASSERT_TRUE(store::DecodeTopicEntry(v1, &back));
  EXPECT_EQ(back.id, 5u);
  EXPECT_EQ(back.created_ms, 777);
  EXPECT_EQ(back.creator, "");
  v1[0] = 2;
  EXPECT_FALSE(store::DecodeTopicEntry(v1, &back)) << "version 2 needs the creator";
  v2[0] = 3;
  EXPECT_FALSE(store::DecodeTopicEntry(v2, &back)) << "an unknown version";
}

TEST(StoreRecords, GroupEntriesRoundTripAndRefuseTruncation) {
  const std::string value = store::EncodeGroupEntry({1234, "svc-billing"});
  store::GroupEntry back;
  ASSERT_TRUE(store::DecodeGroupEntry(value, &back));
  EXPECT_EQ(back.created_ms, 1234);
  EXPECT_EQ(back.creator, "svc-billing");
  for (size_t n = 0; n < value.size(); ++n) {
    EXPECT_FALSE(store::DecodeGroupEntry(value.substr(0, n), &back)) << n;
  }
  std::string_view name;
  const std::string key = store::GroupKey("billing");
  ASSERT_TRUE(store::ParseGroupKey(key, &name));
  EXPECT_EQ(name, "billing");
  const std::string topic_key = store::TopicKey("billing");
  EXPECT_FALSE(store::ParseGroupKey(topic_key, &name));
}

TEST(StoreRecords, PayloadRecordsRoundTripAndRefuseTruncation) {
  MessageView m;
  m.id = "id-1";
  m.topic = "orders";
  m.key = "k";
  m.body = std::string(300, 'b');
  m.properties = {{"a", "1"}};
  std::string payload;
  store::AppendMessageRecord({2, 1, 7, store::kFlagIndexed, m}, &payload);
  store::AppendHalfRecord({"tx-1", 3, 250, m}, &payload);
  store::AppendDelayedRecord({999, 4, 2, 0, m}, &payload);
  std::vector<store::RecordView> records;
  ASSERT_TRUE(store::ParseRecords(payload, &records));
  ASSERT_EQ(records.size(), 3u);
  store::MessageBody mb;
  ASSERT_TRUE(store::DecodeMessageBody(records[0].body, &mb));
  EXPECT_EQ(mb.offset, 7u);
  EXPECT_EQ(mb.message.body, m.body);
  store::HalfBody hb;
  ASSERT_TRUE(store::DecodeHalfBody(records[1].body, &hb));
  EXPECT_EQ(hb.tx_id, "tx-1");
  EXPECT_EQ(hb.delay_ms, 250u);
  store::DelayedBody db;
  ASSERT_TRUE(store::DecodeDelayedBody(records[2].body, &db));
  EXPECT_EQ(db.due_ms, 999);
  EXPECT_EQ(records[1].offset_in_payload, records[0].body.size() + store::kRecordHeaderBytes);
  for (size_t cut = 1; cut < payload.size(); cut += 37) {
    std::vector<store::RecordView> partial;
    const bool ok = store::ParseRecords(std::string_view(payload).substr(0, cut), &partial);
    EXPECT_TRUE(!ok || partial.size() < 3) << cut;
  }
}

TEST(StoreRecords, EachRecordChecksItselfSoOneFlippedByteIsCaught) {
  MessageView m;
  m.id = "id-1";
  m.topic = "orders";
  m.body = std::string(200, 'b');
  std::string payload;
  store::AppendMessageRecord({2, 1, 7, 0, m}, &payload);
  const size_t second = payload.size();
  store::AppendMessageRecord({2, 1, 8, 0, m}, &payload);
  store::RecordView r;
  ASSERT_TRUE(store::ParseRecordAt(payload, &r));
  ASSERT_TRUE(store::ParseRecordAt(std::string_view(payload).substr(second), &r));
  for (size_t at : {size_t{0}, size_t{3}, size_t{7}, size_t{50}, second - 1}) {
    std::string damaged = payload;
    damaged[at] = static_cast<char>(damaged[at] ^ 0x20);
    EXPECT_FALSE(store::ParseRecordAt(damaged, &r)) << "flip at " << at;
    // The record after it is still whole on its own.
    EXPECT_TRUE(store::ParseRecordAt(std::string_view(damaged).substr(second), &r)) << at;
    std::vector<store::RecordView> records;
    EXPECT_FALSE(store::ParseRecords(damaged, &records)) << at;
  }
}

TEST(Coding, VarintsRoundTripAndRefuseTruncation) {
  for (uint64_t v : {0ull, 1ull, 127ull, 128ull, 300ull, 1ull << 35, ~0ull}) {
    std::string s;
    PutVarint64(&s, v);
    std::string_view in(s);
    uint64_t out;
    ASSERT_TRUE(GetVarint64(&in, &out));
    EXPECT_EQ(out, v);
    EXPECT_TRUE(in.empty());
    std::string_view cut(s.data(), s.size() - 1);
    if (!cut.empty()) {
      EXPECT_FALSE(GetVarint64(&cut, &out)) << v;
    }
  }
}

TEST(Records, MessageRoundTrip) {
  MessageView m;
  m.flags = 3;
  m.born_ms = 111;
  m.stored_ms = 222;
  m.id = "id";
  m.topic = "orders";
  m.key = "k";
  m.properties = {{"a", "1"}, {"", ""}};
  m.body = std::string_view("b\0dy", 4);
  std::string value;
  EncodeMessage(m, &value);
  MessageView out;
  ASSERT_TRUE(DecodeMessage(value, &out));
  EXPECT_EQ(out.flags, 3);
  EXPECT_EQ(out.born_ms, 111);
  EXPECT_EQ(out.stored_ms, 222);
  EXPECT_EQ(out.id, "id");
  EXPECT_EQ(out.topic, "orders");
  EXPECT_EQ(out.key, "k");
  ASSERT_EQ(out.properties.size(), 2u);
  EXPECT_EQ(out.properties[0].first, "a");
  EXPECT_EQ(out.body, std::string_view("b\0dy", 4));
}

TEST(Records, TruncatedOrForeignBytesAreRefused) {
  MessageView m;
  m.id = "id";
  m.topic = "t";
  m.body = "hello";
  std::string value;
  EncodeMessage(m, &value);
  MessageView out;
  for (size_t n = 0; n < value.size(); ++n) {
    EXPECT_FALSE(DecodeMessage(std::string_view(value.data(), n), &out)) << n;
  }
  std::string future = value;
  future[0] = 9;  // an unknown format version
  EXPECT_FALSE(DecodeMessage(future, &out));
}

TEST(Records, SmallRecordsRoundTrip) {
  RetryRecord r{"orders", 2, 99, 3, 16, std::nullopt};
  RetryRecord r2;
  ASSERT_TRUE(DecodeRetry(EncodeRetry(r), &r2));
  EXPECT_FALSE(r2.source.has_value());
  r.source = Location{"%RETRY%g", 0, 7};
  ASSERT_TRUE(DecodeRetry(EncodeRetry(r), &r2));
  ASSERT_TRUE(r2.source.has_value());
  EXPECT_EQ(*r2.source, *r.source);
  EXPECT_EQ(r2.topic, "orders");
  EXPECT_EQ(r2.offset, 99u);
  EXPECT_EQ(r2.delivery_count, 3u);
}

TEST(Records, TransactionRoundTripAndTruncation) {
  TxRecord tx;
  tx.state = TxStateCode::kCommitted;
  tx.stuck = true;
  tx.group = "orders";
  tx.instance = "client-1";
  tx.born_ms = 5;
  tx.check_count = 7;
  tx.no_producer_checks = 3;
  tx.last_check_ms = 6;
  tx.next_check_ms = 8;
  tx.last_answer = CheckAnswerCode::kNoProducer;
  tx.last_error = "nobody home";
  tx.resolved_ms = 9;
  tx.resolved_by = "operator alice";
  tx.principal = "svc";
  tx.messages = {{"m1", "orders", "k1"}, {"m2", "audit", ""}};
  const std::string value = EncodeTx(tx);
  TxRecord out;
  ASSERT_TRUE(DecodeTx(value, &out));
  EXPECT_EQ(out.state, TxStateCode::kCommitted);
  EXPECT_TRUE(out.stuck);
  EXPECT_EQ(out.check_count, 7u);
  EXPECT_EQ(out.no_producer_checks, 3u);
  EXPECT_EQ(out.last_answer, CheckAnswerCode::kNoProducer);
  EXPECT_EQ(out.resolved_by, "operator alice");
  EXPECT_EQ(out.principal, "svc");
  ASSERT_EQ(out.messages.size(), 2u);
  EXPECT_EQ(out.messages[1].topic, "audit");
  for (size_t n = 0; n < value.size(); ++n) {
    TxRecord partial;
    EXPECT_FALSE(DecodeTx(std::string_view(value.data(), n), &partial)) << n;
  }
  std::string bad_state = value;
  bad_state[1] = 9;
  EXPECT_FALSE(DecodeTx(bad_state, &out));

  // What brokers before versions 3 and 2 wrote still reads, without the
  // principal and without the attempts.
  std::string v2 = value.substr(0, value.size() - 4);  // length 3, "svc"
  v2[0] = 2;
  ASSERT_TRUE(DecodeTx(v2, &out));
  EXPECT_EQ(out.principal, "");
  EXPECT_EQ(out.no_producer_checks, 3u);
  std::string v1 = v2.substr(0, v2.size() - 1);
  v1[0] = 1;
  ASSERT_TRUE(DecodeTx(v1, &out));
  EXPECT_EQ(out.no_producer_checks, 0u);
  EXPECT_EQ(out.check_count, 7u);
  EXPECT_FALSE(DecodeTx(value.substr(0, value.size() - 4), &out)) << "v3 needs the field";
  EXPECT_FALSE(DecodeTx(v2.substr(0, v2.size() - 1), &out)) << "v2 needs the field";
}

TEST(Keys, TransactionSchedulesSortByTime) {
  EXPECT_LT(store::TimedTxKey(store::kCheck, 99, "zzz"),
            store::TimedTxKey(store::kCheck, 100, "aaa"));
  const std::string k = store::TimedTxKey(store::kCheck, 1234, "tx-9");
  int64_t ms;
  std::string_view id;
  ASSERT_TRUE(store::ParseTimedTxKey(k, store::kCheck, &ms, &id));
  EXPECT_EQ(ms, 1234);
  EXPECT_EQ(id, "tx-9");
  EXPECT_FALSE(store::ParseTimedTxKey(k, store::kTxExpiry, &ms, &id));
  EXPECT_TRUE(store::HalfKey("tx", 1).starts_with(store::HalfPrefix("tx")));
  EXPECT_FALSE(store::HalfKey("tx2", 1).starts_with(store::HalfPrefix("tx")));
}

}  // namespace
}  // namespace txmq::storage
