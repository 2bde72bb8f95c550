// Encoding and bounded decoding of wire Envelopes.
//
// A frame is one unpacked Cap'n Proto message (segment table + segments).
// Bytes from the network are untrusted: DecodeFrame refuses frames above
// the size limit or not a whole number of words, and reads them with a
// traversal and nesting limit so a hostile frame costs bounded work. Field
// access may still throw kj::Exception on a malformed pointer; the code that
// reads an envelope catches it at its top level (see broker dispatch).
#pragma once

#include <capnp/message.h>
#include <capnp/serialize.h>

#include <cstddef>
#include <memory>
#include <zmq.hpp>

#include "protocol/txmq.capnp.h"
#include "txmq/status.h"

namespace txmq::wire {

// The size rule, one for every request that carries messages (a send, a
// transaction's half): the sum over its messages of their counted bytes
// (property::CountedBytes: body + key + non-reserved properties) is at most
// the broker's max_message_bytes. The rest of such a request is bounded by
// the broker's checks, with these limits:
inline constexpr size_t kDefaultMaxMessageBytes = 4 * 1024 * 1024;
inline constexpr size_t kMaxMessagesPerRequest = 64;
// Ends one half message may carry (SendHalfRequest.ends). Each takes at
// most a transaction id (kMaxMessageIdBytes) and a few words, so together
// they stay well inside kEnvelopeOverheadBytes.
inline constexpr size_t kMaxEndsPerHalf = 64;
inline constexpr size_t kMaxMessageIdBytes = 128;
inline constexpr size_t kMaxKeyBytes = 4096;
inline constexpr size_t kMaxUserProperties = 128;
inline constexpr size_t kMaxReservedProperties = 16;
inline constexpr size_t kMaxPropertyNameBytes = 256;
// What one message may add to a frame beyond its counted bytes: id and
// topic, fixed fields, list and text framing of up to 144 properties
// (about 32 bytes each), and up to property::kMaxReservedBytes of reserved
// properties. A unit test builds the worst case and checks it fits.
inline constexpr size_t kMessageFramingBytes = 16 * 1024;
// The envelope around the messages (request id, transaction id, group).
inline constexpr size_t kEnvelopeOverheadBytes = 64 * 1024;

// The largest frame a request that obeys the size rule can take. The
// broker's socket drops a connection that sends a bigger frame (ZeroMQ's
// ZMQ_MAXMSGSIZE), so the broker announces this in its hello reply and the
// client refuses a bigger request without sending it.
constexpr size_t MaxFrameBytes(size_t max_message_bytes) {
  return max_message_bytes + kMaxMessagesPerRequest * kMessageFramingBytes + kEnvelopeOverheadBytes;
}

struct DecodeLimits {
  size_t max_frame_bytes = MaxFrameBytes(kDefaultMaxMessageBytes);
  int nesting_limit = 16;
};

// One received envelope, owning the bytes it reads from. Movable.
class Frame {
 public:
  Frame(Frame&&) noexcept = default;
  Frame& operator=(Frame&&) noexcept = default;

  Envelope::Reader envelope() const { return root_; }
  size_t size_bytes() const { return size_bytes_; }

 private:
  friend Result<Frame> DecodeFrame(zmq::message_t&& bytes, const DecodeLimits& limits);
  Frame() = default;

  // Heap-held so the words the reader points into never move with the Frame
  // (ZeroMQ keeps small messages inside the message object itself).
  std::unique_ptr<zmq::message_t> bytes_;
  kj::Array<capnp::word> aligned_copy_;  // used only when bytes_ is not word aligned
  std::unique_ptr<capnp::FlatArrayMessageReader> reader_;
  Envelope::Reader root_;
  size_t size_bytes_ = 0;
};

Result<Frame> DecodeFrame(zmq::message_t&& bytes, const DecodeLimits& limits);

// Serializes a built message into one ZeroMQ message (a single copy).
zmq::message_t EncodeFrame(capnp::MessageBuilder& builder);
// Serializes a built message into `out`, which must hold exactly
// computeSerializedSizeInWords(builder) words.
void EncodeFrameInto(capnp::MessageBuilder& builder, kj::ArrayPtr<capnp::word> out);

// A request or reply under construction, with its requestId set. Movable.
class OutFrame {
 public:
  explicit OutFrame(uint64_t request_id);
  OutFrame(OutFrame&&) noexcept = default;
  OutFrame& operator=(OutFrame&&) noexcept = default;

  Envelope::Builder envelope() { return root_; }
  uint64_t request_id() const { return request_id_; }
  zmq::message_t Encode() { return EncodeFrame(*builder_); }
  // The size Encode() would produce, without encoding.
  size_t EncodedBytes() {
    return capnp::computeSerializedSizeInWords(*builder_) * sizeof(capnp::word);
  }
  // Encodes into words the caller owns (EncodedBytes() / 8 of them).
  void EncodeInto(kj::ArrayPtr<capnp::word> out) { EncodeFrameInto(*builder_, out); }

 private:
  std::unique_ptr<capnp::MallocMessageBuilder> builder_;
  Envelope::Builder root_;
  uint64_t request_id_;
};

// Status <-> wire error, in one place.
ErrorCode ToWireCode(StatusCode code);
StatusCode FromWireCode(ErrorCode code);
void SetError(Envelope::Builder envelope, const Status& status);
// NOT_LEADER with the leader's client URL ("" while an election runs).
void SetNotLeader(Envelope::Builder envelope, const std::string& message,
                  const std::string& leader_url);
// WRONG_GROUP with the serving group's leader URL ("" unknown).
void SetWrongGroup(Envelope::Builder envelope, const std::string& message,
                   const std::string& leader_url);
// The leader URL of a NOT_LEADER or WRONG_GROUP error ("" for anything else).
std::string LeaderUrlOf(Envelope::Reader envelope);
// The encoded request `bytes` under another request id (a call a client
// sends again elsewhere, so a late answer to the first sending is unknown).
Result<zmq::message_t> WithRequestId(const zmq::message_t& bytes, uint64_t request_id);
// The Status an envelope stands for: its Error if it is one, else OK.
Status StatusOf(Envelope::Reader envelope);

}  // namespace txmq::wire
