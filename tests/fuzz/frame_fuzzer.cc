// Untrusted bytes from the network: DecodeFrame must refuse or accept
// them, and reading an accepted envelope (every field, through the
// generated readers) may throw kj::Exception but never crash or run away.
// A refusal names why; what reads in full re-encodes to the same fields.
#include <capnp/pretty-print.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "protocol/src/codec.h"
#include "protocol/src/message_codec.h"
#include "tests/fuzz/fuzz_target.h"

using txmq::wire::Envelope;

namespace {

[[noreturn]] void Inconsistent(const std::string& what) {
  std::fprintf(stderr, "frame fuzzer: %s\n", what.c_str());
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  zmq::message_t bytes(data, size);
  auto frame = txmq::wire::DecodeFrame(std::move(bytes), {.max_frame_bytes = 1 << 20});
  if (!frame.ok()) {
    // A refusal says why, as one of the two codes a bad frame gets.
    const auto code = frame.status().code();
    if ((code != txmq::StatusCode::kCorruption && code != txmq::StatusCode::kTooLarge) ||
        frame.status().message().empty()) {
      Inconsistent("refused with " + frame.status().ToString());
    }
    return 0;
  }
  std::string text;
  capnp::MallocMessageBuilder copy;
  try {
    Envelope::Reader env = frame->envelope();
    (void)env.totalSize();                            // follows every pointer, within the limits
    text = capnp::prettyPrint(env).flatten().cStr();  // reads every field the schema knows
    if (env.which() == Envelope::SEND) {
      (void)txmq::wire::ToString(env.getSend().getMessage().getBody());
    }
    if (env.which() == Envelope::PULL_OK) {
      for (auto d : env.getPullOk().getMessages()) (void)txmq::wire::DeliveredFromWire(d);
    }
    copy.setRoot(env);  // reads it all once more (within the same traversal budget)
  } catch (const kj::Exception&) {
    // Refused while reading: what the broker's dispatch does too.
    return 0;
  }
  // What was read in full means the same once re-encoded: the copy decodes
  // to the same fields.
  zmq::message_t again_bytes = txmq::wire::EncodeFrame(copy);
  // Aliased pointers are copied out, so the copy may be bigger (by at most
  // what the traversal limit let through).
  auto again = txmq::wire::DecodeFrame(std::move(again_bytes), {.max_frame_bytes = 64 << 20});
  if (!again.ok()) Inconsistent("re-encoded frame refused: " + again.status().ToString());
  if (std::string(capnp::prettyPrint(again->envelope()).flatten().cStr()) != text) {
    Inconsistent("re-encoded frame reads differently");
  }
  return 0;
}

std::vector<std::string> FuzzSeeds() {
  std::vector<std::string> seeds;
  auto add = [&](txmq::wire::OutFrame& f) {
    zmq::message_t m = f.Encode();
    seeds.emplace_back(static_cast<const char*>(m.data()), m.size());
  };
  {
    txmq::wire::OutFrame f(1);
    txmq::Message m{
        .topic = "orders", .key = "k", .body = "hello", .properties = {{"a", "b"}}, .id = "id-1"};
    txmq::wire::MessageToWire(m, 5, f.envelope().initSend().initMessage());
    add(f);
  }
  {
    txmq::wire::OutFrame f(2);
    auto p = f.envelope().initPull();
    p.setGroup("g");
    p.initTopics(2).set(0, "a");
    add(f);
  }
  {
    txmq::wire::OutFrame f(3);
    auto half = f.envelope().initSendHalf();
    half.setTransactionId("tx");
    half.initMessages(2)[1].setTopic("t");
    add(f);
  }
  {
    txmq::wire::OutFrame f(4);
    auto ok = f.envelope().initPullOk();
    auto d = ok.initMessages(1)[0];
    d.initMessage().setBody(txmq::wire::AsData(std::string(100, 'x')));
    d.initReceipt().setTopic("t");
    add(f);
  }
  {
    txmq::wire::OutFrame f(5);
    f.envelope().initAck().initReceipts(3);
    add(f);
  }
  return seeds;
}
