// Untrusted bytes from the network: DecodeFrame must refuse or accept
// them, and reading an accepted envelope (every field, through the
// generated readers) may throw kj::Exception but never crash or run away.
#include <capnp/pretty-print.h>

#include "protocol/src/codec.h"
#include "protocol/src/message_codec.h"
#include "tests/fuzz/fuzz_target.h"

using txmq::wire::Envelope;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  zmq::message_t bytes(data, size);
  auto frame = txmq::wire::DecodeFrame(std::move(bytes), {.max_frame_bytes = 1 << 20});
  if (!frame.ok()) return 0;
  try {
    Envelope::Reader env = frame->envelope();
    (void)env.totalSize();                    // follows every pointer, within the limits
    (void)capnp::prettyPrint(env).flatten();  // reads every field the schema knows
    if (env.which() == Envelope::SEND) {
      (void)txmq::wire::ToString(env.getSend().getMessage().getBody());
    }
    if (env.which() == Envelope::PULL_OK) {
      for (auto d : env.getPullOk().getMessages()) (void)txmq::wire::DeliveredFromWire(d);
    }
  } catch (const kj::Exception&) {
    // Refused while reading: what the broker's dispatch does too.
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
