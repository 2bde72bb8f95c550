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

TEST(Codec, TraversalLimitStopsAmplification) {
  // A list of many pointers to one struct costs little on the wire but a
  // lot to traverse; the limit is proportional to the frame size.
  capnp::MallocMessageBuilder builder;
  auto env = builder.initRoot<Envelope>();
  auto pull = env.initPull();
  auto topics = pull.initTopics(2000);
  for (unsigned i = 0; i < topics.size(); ++i) topics.set(i, "t");
  zmq::message_t bytes = EncodeFrame(builder);
  auto frame = DecodeFrame(std::move(bytes), {});
  ASSERT_TRUE(frame.ok());
  size_t total = 0;
  for (auto t : frame->envelope().getPull().getTopics()) total += t.size();
  EXPECT_EQ(total, 2000u);  // honest frames are fully readable
}

TEST(Codec, EveryStatusCodeSurvivesTheWire) {
  for (int c = 1; c <= static_cast<int>(StatusCode::kInternal); ++c) {
    Status s(static_cast<StatusCode>(c), "why " + std::to_string(c));
    OutFrame f(1);
    SetError(f.envelope(), s);
    auto frame = DecodeFrame(f.Encode(), {});
    ASSERT_TRUE(frame.ok());
    EXPECT_EQ(StatusOf(frame->envelope()), s);
  }
}

TEST(Codec, AnErrorClaimingOkIsStillAnError) {
  OutFrame f(1);
  f.envelope().initError().setCode(ErrorCode::OK);
  auto frame = DecodeFrame(f.Encode(), {});
  EXPECT_EQ(StatusOf(frame->envelope()).code(), StatusCode::kInternal);
}

}  // namespace
}  // namespace txmq::wire
