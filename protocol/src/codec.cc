#include "protocol/src/codec.h"

#include <kj/io.h>

#include <cstdint>
#include <cstring>
#include <string>

namespace txmq::wire {

Result<Frame> DecodeFrame(zmq::message_t&& bytes, const DecodeLimits& limits) {
  const size_t size = bytes.size();
  if (size > limits.max_frame_bytes) {
    return Status::TooLarge("frame of " + std::to_string(size) + " bytes is above the limit of " +
                            std::to_string(limits.max_frame_bytes) + " bytes");
  }
  if (size == 0 || size % sizeof(capnp::word) != 0) {
    return Status::Corruption("frame of " + std::to_string(size) +
                              " bytes is not a whole number of 8-byte words");
  }
  Frame frame;
  frame.size_bytes_ = size;
  frame.bytes_ = std::make_unique<zmq::message_t>(std::move(bytes));
  kj::ArrayPtr<const capnp::word> words;
  const auto* data = static_cast<const unsigned char*>(frame.bytes_->data());
  if (reinterpret_cast<uintptr_t>(data) % alignof(capnp::word) == 0) {
    words = kj::arrayPtr(reinterpret_cast<const capnp::word*>(data), size / sizeof(capnp::word));
  } else {
    // Cap'n Proto reads words in place and needs them 8-byte aligned.
    frame.aligned_copy_ = kj::heapArray<capnp::word>(size / sizeof(capnp::word));
    std::memcpy(frame.aligned_copy_.begin(), data, size);
    words = frame.aligned_copy_.asPtr();
  }
  capnp::ReaderOptions options;
  // Every word may be visited at most a few times; far fewer than the
  // default 64 Mi words for small frames, so amplification attacks stay cheap.
  options.traversalLimitInWords = size / sizeof(capnp::word) * 4 + 1024;
  options.nestingLimit = limits.nesting_limit;
  try {
    frame.reader_ = std::make_unique<capnp::FlatArrayMessageReader>(words, options);
    frame.root_ = frame.reader_->getRoot<Envelope>();
  } catch (const kj::Exception& e) {
    return Status::Corruption("malformed frame: " + std::string(e.getDescription().cStr()));
  }
  return frame;
}

zmq::message_t EncodeFrame(capnp::MessageBuilder& builder) {
  const size_t words = capnp::computeSerializedSizeInWords(builder);
  zmq::message_t out(words * sizeof(capnp::word));
  kj::ArrayOutputStream stream(kj::arrayPtr(static_cast<kj::byte*>(out.data()), out.size()));
  capnp::writeMessage(stream, builder);
  return out;
}

void EncodeFrameInto(capnp::MessageBuilder& builder, kj::ArrayPtr<capnp::word> out) {
  kj::ArrayOutputStream stream(out.asBytes());
  capnp::writeMessage(stream, builder);
}

OutFrame::OutFrame(uint64_t request_id)
    : builder_(std::make_unique<capnp::MallocMessageBuilder>()),
      root_(builder_->initRoot<Envelope>()),
      request_id_(request_id) {
  root_.setRequestId(request_id);
}

ErrorCode ToWireCode(StatusCode code) {
  switch (code) {
    case StatusCode::kOk:
      return ErrorCode::OK;
    case StatusCode::kInvalidArgument:
      return ErrorCode::INVALID_ARGUMENT;
    case StatusCode::kNotFound:
      return ErrorCode::NOT_FOUND;
    case StatusCode::kConflict:
      return ErrorCode::CONFLICT;
    case StatusCode::kTimeout:
      return ErrorCode::TIMEOUT;
    case StatusCode::kUnavailable:
      return ErrorCode::UNAVAILABLE;
    case StatusCode::kOverloaded:
      return ErrorCode::OVERLOADED;
    case StatusCode::kTooLarge:
      return ErrorCode::TOO_LARGE;
    case StatusCode::kCorruption:
      return ErrorCode::CORRUPTION;
    case StatusCode::kAborted:
      return ErrorCode::ABORTED;
    case StatusCode::kFailedPrecondition:
      return ErrorCode::FAILED_PRECONDITION;
    case StatusCode::kInternal:
      return ErrorCode::INTERNAL;
    case StatusCode::kResourceExhausted:
      return ErrorCode::RESOURCE_EXHAUSTED;
    case StatusCode::kPermissionDenied:
      return ErrorCode::PERMISSION_DENIED;
    case StatusCode::kNotLeader:
      return ErrorCode::NOT_LEADER;
    case StatusCode::kWrongGroup:
      return ErrorCode::WRONG_GROUP;
  }
  return ErrorCode::INTERNAL;
}

StatusCode FromWireCode(ErrorCode code) {
  switch (code) {
    case ErrorCode::OK:
      return StatusCode::kOk;
    case ErrorCode::INVALID_ARGUMENT:
      return StatusCode::kInvalidArgument;
    case ErrorCode::NOT_FOUND:
      return StatusCode::kNotFound;
    case ErrorCode::CONFLICT:
      return StatusCode::kConflict;
    case ErrorCode::TIMEOUT:
      return StatusCode::kTimeout;
    case ErrorCode::UNAVAILABLE:
      return StatusCode::kUnavailable;
    case ErrorCode::OVERLOADED:
      return StatusCode::kOverloaded;
    case ErrorCode::TOO_LARGE:
      return StatusCode::kTooLarge;
    case ErrorCode::CORRUPTION:
      return StatusCode::kCorruption;
    case ErrorCode::ABORTED:
      return StatusCode::kAborted;
    case ErrorCode::FAILED_PRECONDITION:
      return StatusCode::kFailedPrecondition;
    case ErrorCode::INTERNAL:
      return StatusCode::kInternal;
    case ErrorCode::RESOURCE_EXHAUSTED:
      return StatusCode::kResourceExhausted;
    case ErrorCode::PERMISSION_DENIED:
      return StatusCode::kPermissionDenied;
    case ErrorCode::NOT_LEADER:
      return StatusCode::kNotLeader;
    case ErrorCode::WRONG_GROUP:
      return StatusCode::kWrongGroup;
  }
  // A newer broker may send a code this client does not know.
  return StatusCode::kInternal;
}

void SetError(Envelope::Builder envelope, const Status& status) {
  auto error = envelope.initError();
  error.setCode(ToWireCode(status.code()));
  error.setMessage(status.message());
}

namespace {

// An error that names where to go instead.
void SetRedirect(Envelope::Builder envelope, ErrorCode code, const std::string& message,
                 const std::string& leader_url) {
  auto error = envelope.initError();
  error.setCode(code);
  error.setMessage(message);
  error.setLeaderUrl(leader_url);
}

}  // namespace

void SetNotLeader(Envelope::Builder envelope, const std::string& message,
                  const std::string& leader_url) {
  SetRedirect(envelope, ErrorCode::NOT_LEADER, message, leader_url);
}

void SetWrongGroup(Envelope::Builder envelope, const std::string& message,
                   const std::string& leader_url) {
  SetRedirect(envelope, ErrorCode::WRONG_GROUP, message, leader_url);
}

std::string LeaderUrlOf(Envelope::Reader envelope) {
  if (envelope.which() != Envelope::ERROR) return "";
  return envelope.getError().getLeaderUrl().cStr();
}

Result<zmq::message_t> WithRequestId(const zmq::message_t& bytes, uint64_t request_id) {
  zmq::message_t shared;
  shared.copy(const_cast<zmq::message_t&>(bytes));  // a reference to the same buffer
  auto frame = DecodeFrame(std::move(shared), {.max_frame_bytes = bytes.size()});
  if (!frame.ok()) return frame.status();
  capnp::MallocMessageBuilder builder;
  builder.setRoot(frame->envelope());
  builder.getRoot<Envelope>().setRequestId(request_id);
  return EncodeFrame(builder);
}

Status StatusOf(Envelope::Reader envelope) {
  if (envelope.which() != Envelope::ERROR) return Status::OK();
  auto error = envelope.getError();
  StatusCode code = FromWireCode(error.getCode());
  if (code == StatusCode::kOk) code = StatusCode::kInternal;  // an error must not read as OK
  return Status(code, std::string(error.getMessage().cStr()));
}

}  // namespace txmq::wire
