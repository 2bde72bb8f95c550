#include <gtest/gtest.h>

#include <cstring>

#include "protocol/src/codec.h"
#include "protocol/src/message_codec.h"

namespace txmq::wire {
namespace {

zmq::message_t SendFrame(const std::string& body) {
  OutFrame f(42);
  ::txmq::Message message;
  message.id = "id-1";
  message.topic = "orders";
  message.key = "k";
  message.body = body;
  message.properties = {{"a", "1"}, {"b", "2"}};
  MessageToWire(message, 1234, f.envelope().initSend().initMessage());
  return f.Encode();
}

TEST(Codec, RoundTripsAnEnvelope) {
  zmq::message_t bytes = SendFrame("hello");
  auto frame = DecodeFrame(std::move(bytes), DecodeLimits{});
  ASSERT_TRUE(frame.ok()) << frame.status().ToString();
  auto env = frame->envelope();
  EXPECT_EQ(env.getRequestId(), 42u);
  ASSERT_EQ(env.which(), Envelope::SEND);
  auto m = env.getSend().getMessage();
  EXPECT_EQ(ToString(m.getTopic()), "orders");
  EXPECT_EQ(ToString(m.getBody()), "hello");
  EXPECT_EQ(m.getBornMs(), 1234);
  EXPECT_EQ(m.getProperties().size(), 2u);
}

TEST(Codec, FrameStaysValidWhenMoved) {
  // Small frames live inside the ZeroMQ message object; moving the frame
  // must not leave the reader pointing at the old place.
  OutFrame tiny(7);
  tiny.envelope().setHeartbeat();
  auto frame = DecodeFrame(tiny.Encode(), DecodeLimits{});
  ASSERT_TRUE(frame.ok());
  std::vector<Frame> frames;
  frames.push_back(std::move(frame.value()));
  for (int i = 0; i < 100; ++i) frames.push_back(std::move(*DecodeFrame(SendFrame("x"), {})));
  EXPECT_EQ(frames[0].envelope().getRequestId(), 7u);
  EXPECT_EQ(frames[0].envelope().which(), Envelope::HEARTBEAT);
}

TEST(Codec, RefusesFramesAboveTheLimit) {
  zmq::message_t bytes = SendFrame(std::string(10000, 'x'));
  auto frame = DecodeFrame(std::move(bytes), DecodeLimits{.max_frame_bytes = 4096});
  ASSERT_FALSE(frame.ok());
  EXPECT_EQ(frame.status().code(), StatusCode::kTooLarge);
  EXPECT_NE(frame.status().message().find("4096"), std::string::npos);
}

TEST(Codec, RefusesGarbageAndTruncatedFrames) {
  zmq::message_t empty;
  EXPECT_EQ(DecodeFrame(std::move(empty), {}).status().code(), StatusCode::kCorruption);

  zmq::message_t odd("abc", 3);
  EXPECT_EQ(DecodeFrame(std::move(odd), {}).status().code(), StatusCode::kCorruption);

  std::string junk(64, '\xff');
  zmq::message_t garbage(junk.data(), junk.size());
  EXPECT_FALSE(DecodeFrame(std::move(garbage), {}).ok());

  zmq::message_t whole = SendFrame(std::string(200, 'y'));
  zmq::message_t truncated(whole.data(), whole.size() - 64);
  auto t = DecodeFrame(std::move(truncated), {});
  EXPECT_FALSE(t.ok());
  EXPECT_EQ(t.status().code(), StatusCode::kCorruption);
}

TEST(Codec, ReadsUnalignedBytes) {
  zmq::message_t whole = SendFrame("unaligned");
  std::vector<char> buf(whole.size() + 1);
  std::memcpy(buf.data() + 1, whole.data(), whole.size());
  zmq::message_t shifted(buf.data() + 1, whole.size());
  auto frame = DecodeFrame(std::move(shifted), {});
  ASSERT_TRUE(frame.ok());
  EXPECT_EQ(ToString(frame->envelope().getSend().getMessage().getBody()), "unaligned");
}

TEST(Codec, HonestFramesWithManyPointersAreFullyReadable) {
  // The traversal limit is proportional to the frame size, so an honest
  // frame with many small objects stays readable.
  capnp::MallocMessageBuilder builder;
  auto topics = builder.initRoot<Envelope>().initPull().initTopics(2000);
  for (unsigned i = 0; i < topics.size(); ++i) topics.set(i, "t");
  auto frame = DecodeFrame(EncodeFrame(builder), {});
  ASSERT_TRUE(frame.ok());
  size_t total = 0;
  for (auto t : frame->envelope().getPull().getTopics()) total += t.size();
  EXPECT_EQ(total, 2000u);
}

// A Pull whose `count` topic pointers all point at one text of
// `text_bytes` bytes: small on the wire, count * text_bytes to read.
zmq::message_t AmplifiedPullFrame(unsigned count, unsigned text_bytes) {
  capnp::MallocMessageBuilder builder(count + text_bytes / 8 + 64);  // one segment
  auto topics = builder.initRoot<Envelope>().initPull().initTopics(count);
  topics.set(0, std::string(text_bytes, 'a'));  // topics 1.. stay null pointers
  auto segments = builder.getSegmentsForOutput();
  EXPECT_EQ(segments.size(), 1u);
  // Patched in place, before encoding: the builder owns these words.
  auto* words = reinterpret_cast<unsigned char*>(const_cast<capnp::word*>(segments[0].begin()));
  // A list pointer: low 32 bits = offset (words, from the end of the
  // pointer) << 2 | 1; high 32 bits = element count << 3 | 2 (bytes).
  const uint64_t want_high = (uint64_t{text_bytes + 1} << 3) | 2;  // + NUL
  for (size_t w = 0; w + count <= segments[0].size(); ++w) {
    uint64_t ptr;
    std::memcpy(&ptr, words + w * 8, 8);
    if ((ptr >> 32) != want_high || (ptr & 3) != 1) continue;
    const int32_t offset = static_cast<int32_t>(ptr & 0xffffffffu) >> 2;
    for (unsigned i = 1; i < count; ++i) {
      // Pointer i sits i words later, so it needs an offset i words shorter.
      const uint64_t alias = (ptr & 0xffffffff00000000ull) |
                             static_cast<uint32_t>(static_cast<int32_t>(offset - i) << 2) | 1;
      std::memcpy(words + (w + i) * 8, &alias, 8);
    }
    return EncodeFrame(builder);
  }
  ADD_FAILURE() << "did not find the first topic's pointer";
  return EncodeFrame(builder);
}

TEST(Codec, TraversalLimitStopsAmplification) {
  // 2000 pointers at one 8 KB text: a ~24 KB frame that reads as 16 MB.
  zmq::message_t bytes = AmplifiedPullFrame(2000, 8000);
  ASSERT_LT(bytes.size(), 32u * 1024);
  auto frame = DecodeFrame(std::move(bytes), {});
  ASSERT_TRUE(frame.ok()) << frame.status().ToString();
  auto topics = frame->envelope().getPull().getTopics();
  ASSERT_EQ(topics.size(), 2000u);
  // The aliasing is real: the first few reads see the same text.
  EXPECT_EQ(topics[1].size(), 8000u);
  EXPECT_EQ(topics[1].begin(), topics[0].begin());
  size_t read = 0;
  std::string refusal;
  try {
    for (auto t : topics) read += t.size();
  } catch (const kj::Exception& e) {
    refusal = e.getDescription().cStr();
  }
  EXPECT_NE(refusal.find("traversal limit"), std::string::npos)
      << "read " << read << " bytes without refusal";
  EXPECT_LT(read, 1u << 20);  // refused long before the 16 MB were read
}

TEST(Codec, EveryStatusCodeSurvivesTheWire) {
  for (int c = 1; c <= static_cast<int>(StatusCode::kWrongGroup); ++c) {
    Status s(static_cast<StatusCode>(c), "why " + std::to_string(c));
    OutFrame f(1);
    SetError(f.envelope(), s);
    auto frame = DecodeFrame(f.Encode(), {});
    ASSERT_TRUE(frame.ok());
    EXPECT_EQ(StatusOf(frame->envelope()), s);
  }
}

TEST(Codec, NotLeaderCarriesTheLeadersUrl) {
  OutFrame f(3);
  SetNotLeader(f.envelope(), "b does not lead", "tcp://127.0.0.1:7801");
  auto frame = DecodeFrame(f.Encode(), {});
  ASSERT_TRUE(frame.ok());
  EXPECT_EQ(StatusOf(frame->envelope()), Status(StatusCode::kNotLeader, "b does not lead"));
  EXPECT_EQ(LeaderUrlOf(frame->envelope()), "tcp://127.0.0.1:7801");
}

TEST(Codec, WrongGroupCarriesTheServingGroupsLeader) {
  OutFrame f(4);
  SetWrongGroup(f.envelope(), "queue 1 of topic t is served by broker group g2",
                "tcp://127.0.0.1:7802");
  auto frame = DecodeFrame(f.Encode(), {});
  ASSERT_TRUE(frame.ok());
  EXPECT_EQ(StatusOf(frame->envelope()).code(), StatusCode::kWrongGroup);
  EXPECT_EQ(StatusOf(frame->envelope()).ToString(),
            "WRONG_GROUP: queue 1 of topic t is served by broker group g2");
  EXPECT_EQ(LeaderUrlOf(frame->envelope()), "tcp://127.0.0.1:7802");
}

TEST(Codec, ARequestSentAgainKeepsItsContentUnderANewId) {
  OutFrame f(5);
  f.envelope().initSend().initMessage().setId("m-1");
  const zmq::message_t bytes = f.Encode();
  auto again = WithRequestId(bytes, 9);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  auto frame = DecodeFrame(std::move(*again), {});
  ASSERT_TRUE(frame.ok());
  EXPECT_EQ(frame->envelope().getRequestId(), 9u);
  EXPECT_EQ(std::string(frame->envelope().getSend().getMessage().getId().cStr()), "m-1");
}

TEST(Codec, AnErrorClaimingOkIsStillAnError) {
  OutFrame f(1);
  f.envelope().initError().setCode(ErrorCode::OK);
  auto frame = DecodeFrame(f.Encode(), {});
  EXPECT_EQ(StatusOf(frame->envelope()).code(), StatusCode::kInternal);
}

}  // namespace
}  // namespace txmq::wire
