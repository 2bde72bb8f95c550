#include <gtest/gtest.h>

#include "storage/src/coding.h"
#include "storage/src/keys.h"
#include "storage/src/records.h"
#include "storage/src/tx_records.h"

namespace txmq::storage {
namespace {

TEST(Keys, MessageKeysSortByOffset) {
  std::string prev = keys::Message("orders", 1, 0);
  for (uint64_t off : {1ull, 2ull, 255ull, 256ull, 65535ull, 65536ull, 1ull << 40}) {
    std::string next = keys::Message("orders", 1, off);
    EXPECT_LT(prev, next) << off;
    prev = next;
  }
  // Queues and topics group, and a topic never sees its prefix-sharing sibling.
  EXPECT_LT(keys::Message("orders", 1, 999), keys::Message("orders", 2, 0));
  EXPECT_LT(keys::Message("a", 9, 9), keys::Message("ab", 0, 0));
  EXPECT_FALSE(keys::Message("ab", 0, 0).starts_with(keys::QueuePrefix("a", 0)));
}

TEST(Keys, RoundTrip) {
  std::string_view topic, group;
  uint32_t queue;
  uint64_t offset, due, id;
  const std::string message_key = keys::Message("t.1", 3, 77);
  ASSERT_TRUE(keys::ParseMessage(message_key, &topic, &queue, &offset));
  EXPECT_EQ(topic, "t.1");
  EXPECT_EQ(queue, 3u);
  EXPECT_EQ(offset, 77u);
  const std::string cursor_key = keys::Cursor("g", "t", 2);
  ASSERT_TRUE(keys::ParseCursor(cursor_key, &group, &topic, &queue));
  EXPECT_EQ(group, "g");
  EXPECT_EQ(topic, "t");
  EXPECT_EQ(queue, 2u);
  const std::string retry_key = keys::Retry("g", 123456, 9);
  ASSERT_TRUE(keys::ParseRetry(retry_key, &group, &due, &id));
  EXPECT_EQ(due, 123456u);
  EXPECT_EQ(id, 9u);
  EXPECT_FALSE(keys::ParseMessage(std::string_view("q"), &topic, &queue, &offset));
  const std::string longer = keys::Message("t", 1, 1) + "x";
  EXPECT_FALSE(keys::ParseMessage(longer, &topic, &queue, &offset));
}

TEST(Keys, RetryKeysSortByDueTime) {
  EXPECT_LT(keys::Retry("g", 1000, 50), keys::Retry("g", 1001, 1));
  EXPECT_LT(keys::Delayed(5, 100), keys::Delayed(6, 1));
}

TEST(Keys, PrefixEndBoundsAPrefix) {
  EXPECT_EQ(keys::PrefixEnd("ab"), "ac");
  EXPECT_EQ(keys::PrefixEnd(std::string("a\xff", 2)), "b");
  EXPECT_EQ(keys::PrefixEnd(std::string("\xff\xff", 2)), "");
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
  DedupRecord d{123, "orders", 1, true, 5};
  DedupRecord d2;
  ASSERT_TRUE(DecodeDedup(EncodeDedup(d), &d2));
  EXPECT_EQ(d2.stored_ms, 123);
  EXPECT_TRUE(d2.has_offset);
  EXPECT_EQ(d2.offset, 5u);
  TopicRecord t{4, 77};
  TopicRecord t2;
  ASSERT_TRUE(DecodeTopic(EncodeTopic(t), &t2));
  EXPECT_EQ(t2.queues, 4u);
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
  ASSERT_EQ(out.messages.size(), 2u);
  EXPECT_EQ(out.messages[1].topic, "audit");
  for (size_t n = 0; n < value.size(); ++n) {
    TxRecord partial;
    EXPECT_FALSE(DecodeTx(std::string_view(value.data(), n), &partial)) << n;
  }
  std::string bad_state = value;
  bad_state[1] = 9;
  EXPECT_FALSE(DecodeTx(bad_state, &out));

  // What a broker before version 2 wrote still reads, with no such attempts.
  std::string v1 = value.substr(0, value.size() - 1);
  v1[0] = 1;
  ASSERT_TRUE(DecodeTx(v1, &out));
  EXPECT_EQ(out.no_producer_checks, 0u);
  EXPECT_EQ(out.check_count, 7u);
  EXPECT_FALSE(DecodeTx(value.substr(0, value.size() - 1), &out)) << "v2 needs the field";
}

TEST(Keys, TransactionSchedulesSortByTime) {
  EXPECT_LT(keys::TimedTx(keys::kCheck, 99, "zzz"), keys::TimedTx(keys::kCheck, 100, "aaa"));
  const std::string k = keys::TimedTx(keys::kCheck, 1234, "tx-9");
  uint64_t ms;
  std::string_view id;
  ASSERT_TRUE(keys::ParseTimedTx(k, keys::kCheck, &ms, &id));
  EXPECT_EQ(ms, 1234u);
  EXPECT_EQ(id, "tx-9");
  EXPECT_FALSE(keys::ParseTimedTx(k, keys::kTxExpiry, &ms, &id));
  EXPECT_TRUE(keys::Half("tx", 1).starts_with(keys::HalfPrefix("tx")));
  EXPECT_FALSE(keys::Half("tx2", 1).starts_with(keys::HalfPrefix("tx")));
}

}  // namespace
}  // namespace txmq::storage
