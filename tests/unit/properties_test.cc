// Reserved property names, what counts against the size limit, and the
// frame limit that leaves room for every request that obeys it.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>

#include "protocol/src/codec.h"
#include "protocol/src/message_codec.h"
#include "txmq/properties.h"

namespace txmq {
namespace {

TEST(Properties, EveryReservedNameIsInTheReservedNamespace) {
  for (const char* name :
       {property::kCompensateTo, property::kTransactionId, property::kProducerGroup,
        property::kOriginalId, property::kOriginalTopic, property::kConsumerGroup,
        property::kReason, property::kDeadLetterGroup, property::kDeadLetterTopic,
        property::kDeadLetterQueue, property::kDeadLetterOffset, property::kDeadLetterDeliveries}) {
    EXPECT_TRUE(property::IsReserved(name)) << name;
  }
  EXPECT_TRUE(property::IsClientStamped(property::kTransactionId));
  EXPECT_TRUE(property::IsClientStamped(property::kCompensateTo));
  EXPECT_FALSE(property::IsClientStamped(property::kDeadLetterTopic)) << "the broker's own";
  EXPECT_FALSE(property::IsClientStamped("txmq.made-up"));
  EXPECT_FALSE(property::IsReserved("txmq-tx")) << "the 0.1 spelling is a user name";
}

TEST(Properties, UsersMaySetOnlyTheCompensationAddress) {
  EXPECT_TRUE(property::CheckUserProperties({{"a", "1"}, {"txmq-tx", "old spelling"}}).ok());
  EXPECT_TRUE(property::CheckUserProperties({{property::kCompensateTo, "payment-failures"}}).ok());
  Status s = property::CheckUserProperties({{"a", "1"}, {property::kTransactionId, "forged"}});
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("'txmq.tx' is reserved"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find(property::kCompensateTo), std::string::npos) << s.message();
  EXPECT_FALSE(property::CheckUserProperties({{"txmq.anything", ""}}).ok());
}

TEST(Properties, ReservedPropertiesDoNotCountAgainstTheLimit) {
  Message m{.topic = "t", .key = "key", .body = "body"};
  m.properties = {{"user", "value"}, {property::kTransactionId, std::string(100, 'x')}};
  EXPECT_EQ(property::CountedBytes(m), 3u + 4u + 4u + 5u);
}

TEST(Properties, FindReadsTheSpellingOfTxmq01) {
  Properties old = {{"txmq-compensate-to", "payment-failures"}, {"txmq-tx", "t-1"}};
  ASSERT_NE(property::Find(old, property::kCompensateTo), nullptr);
  EXPECT_EQ(*property::Find(old, property::kCompensateTo), "payment-failures");
  EXPECT_EQ(*property::Find(old, property::kTransactionId), "t-1");
  EXPECT_EQ(property::Find(old, property::kProducerGroup), nullptr);
  Properties both = {{"txmq-tx", "old"}, {property::kTransactionId, "new"}};
  EXPECT_EQ(*property::Find(both, property::kTransactionId), "new") << "the current name wins";
}

// The largest frame a request can take while obeying the size rule with
// `max_message_bytes`: a transaction of the most messages, each with the
// longest id and topic, the most properties (one-byte names, empty values:
// framing that counts almost nothing) and the most reserved entries and
// bytes, the rest of the budget in bodies. Built on the wire directly,
// where names may repeat.
size_t WorstCaseFrameBytes(size_t max_message_bytes) {
  wire::OutFrame f(~0ull);
  auto half = f.envelope().initSendHalf();
  half.setTransactionId(std::string(wire::kMaxMessageIdBytes, 't'));
  half.setProducerGroup(std::string(127, 'g'));
  const size_t n = wire::kMaxMessagesPerRequest;
  auto list = half.initMessages(static_cast<unsigned>(n));
  size_t budget = max_message_bytes;
  const std::string reserved_name = property::kOriginalTopic;
  const std::string reserved_value(
      property::kMaxReservedBytes / wire::kMaxReservedProperties - reserved_name.size(), 'r');
  for (size_t i = 0; i < n; ++i) {
    auto m = list[static_cast<unsigned>(i)];
    m.setId(std::string(wire::kMaxMessageIdBytes, 'i'));
    m.setTopic(std::string(127, 't'));
    m.setBornMs(1);
    m.setDelayMs(1);
    const size_t share = budget / (n - i);
    const size_t user = std::min<size_t>(wire::kMaxUserProperties, share);
    auto props = m.initProperties(static_cast<unsigned>(user + wire::kMaxReservedProperties));
    for (size_t p = 0; p < user; ++p) {
      props[static_cast<unsigned>(p)].setKey("a");
      props[static_cast<unsigned>(p)].setValue("");
    }
    for (size_t r = 0; r < wire::kMaxReservedProperties; ++r) {
      props[static_cast<unsigned>(user + r)].setKey(reserved_name);
      props[static_cast<unsigned>(user + r)].setValue(reserved_value);
    }
    const std::string body(share - user, 'b');
    m.setBody(wire::AsData(body));
    budget -= share;
  }
  return f.Encode().size();
}

TEST(Properties, EveryRequestThatObeysTheSizeRuleFitsTheFrameLimit) {
  for (size_t max :
       {size_t{1024}, size_t{64 * 1024}, wire::kDefaultMaxMessageBytes, size_t{64} * 1024 * 1024}) {
    const size_t worst = WorstCaseFrameBytes(max);
    EXPECT_LE(worst, wire::MaxFrameBytes(max)) << "max_message_bytes " << max;
  }
}

}  // namespace
}  // namespace txmq
