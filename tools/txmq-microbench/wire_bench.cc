// The wire codec on the two hot paths: a producer's send request (encode on
// the client, bounded decode in the broker) and a pull reply (built by the
// broker from stored records, decoded by the consumer).
#include <benchmark/benchmark.h>

#include <cstring>
#include <string>
#include <vector>

#include "broker/src/stored_message.h"
#include "protocol/src/codec.h"
#include "protocol/src/message_codec.h"
#include "storage/src/records.h"

namespace txmq {
namespace {

Message SampleMessage(size_t body_bytes) {
  Message m;
  m.id = "01a21cbb-265c-73f9-bf84-168086ecab9a";
  m.topic = "order-created";
  m.key = "order-42";
  m.properties = {{"source", "checkout"}, {"trace", "4bf92f3577b34da6a3ce929d0e0e4736"}};
  m.body.assign(body_bytes, 'x');
  return m;
}

zmq::message_t EncodeSend(const Message& m, uint64_t request_id) {
  wire::OutFrame frame(request_id);
  wire::MessageToWire(m, 1'764'000'000'000, frame.envelope().initSend().initMessage());
  return frame.Encode();
}

// A frame as it arrives: the bytes are the receiver's; decoding reads them
// in place (an aligned buffer, as ZeroMQ usually hands over).
class ReceivedBytes {
 public:
  explicit ReceivedBytes(const zmq::message_t& frame)
      : words_((frame.size() + sizeof(capnp::word) - 1) / sizeof(capnp::word)),
        size_(frame.size()) {
    std::memcpy(words_.data(), frame.data(), frame.size());
  }
  // Borrows the buffer: nothing is copied or freed.
  zmq::message_t Borrow() { return zmq::message_t(words_.data(), size_, nullptr, nullptr); }

 private:
  std::vector<capnp::word> words_;
  size_t size_;
};

void BM_EncodeSend(benchmark::State& state) {
  const Message m = SampleMessage(static_cast<size_t>(state.range(0)));
  uint64_t id = 0;
  for (auto _ : state) {
    zmq::message_t frame = EncodeSend(m, ++id);
    benchmark::DoNotOptimize(frame.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * state.range(0));
}
BENCHMARK(BM_EncodeSend)->Arg(128)->Arg(1024)->Arg(64 * 1024);

// What the broker does with a send before checking it: bounded decode and a
// read of every field.
void BM_DecodeSend(benchmark::State& state) {
  ReceivedBytes bytes(EncodeSend(SampleMessage(static_cast<size_t>(state.range(0))), 1));
  const wire::DecodeLimits limits;
  for (auto _ : state) {
    auto frame = wire::DecodeFrame(bytes.Borrow(), limits);
    auto m = frame->envelope().getSend().getMessage();
    size_t n = m.getId().size() + m.getTopic().size() + m.getKey().size() + m.getBody().size();
    for (auto p : m.getProperties()) n += p.getKey().size() + p.getValue().size();
    benchmark::DoNotOptimize(n);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * state.range(0));
}
BENCHMARK(BM_DecodeSend)->Arg(128)->Arg(1024)->Arg(64 * 1024);

// Stored records of `count` messages of `body_bytes`, as a pull reads them.
std::vector<std::string> StoredRecords(int count, size_t body_bytes) {
  const Message m = SampleMessage(body_bytes);
  storage::MessageView view;
  view.id = m.id;
  view.topic = m.topic;
  view.key = m.key;
  for (const auto& [k, v] : m.properties) view.properties.emplace_back(k, v);
  view.body = m.body;
  view.born_ms = view.stored_ms = 1'764'000'000'000;
  std::vector<std::string> records(static_cast<size_t>(count));
  for (auto& r : records) storage::EncodeMessage(view, &r);
  return records;
}

// The broker's pull reply: decode each stored record, copy it onto the
// wire with its receipt, encode the frame (Delivery::ReplyItems).
zmq::message_t EncodePullReply(const std::vector<std::string>& records) {
  wire::OutFrame reply(7);
  auto list = reply.envelope().initPullOk().initMessages(static_cast<unsigned>(records.size()));
  for (unsigned i = 0; i < records.size(); ++i) {
    storage::MessageView m;
    storage::DecodeMessage(records[i], &m);
    auto d = list[i];
    broker::FillWireMessage(m, 0, d.initMessage());
    d.setQueue(1);
    d.setOffset(1000 + i);
    d.setDeliveryCount(1);
    d.setStoredMs(m.stored_ms);
    auto receipt = d.initReceipt();
    receipt.setTopic(std::string(m.topic));
    receipt.setQueue(1);
    receipt.setOffset(1000 + i);
    receipt.setLeaseId(5000 + i);
  }
  return reply.Encode();
}

// Args: messages in the reply, body bytes of each.
void BM_EncodePullReply(benchmark::State& state) {
  const auto records =
      StoredRecords(static_cast<int>(state.range(0)), static_cast<size_t>(state.range(1)));
  for (auto _ : state) {
    zmq::message_t frame = EncodePullReply(records);
    benchmark::DoNotOptimize(frame.data());
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()) * state.range(0));
}
BENCHMARK(BM_EncodePullReply)->Args({1, 1024})->Args({64, 1024})->Args({64, 128});

// The consumer's side: bounded decode, then each message into a Received.
void BM_DecodePullReply(benchmark::State& state) {
  ReceivedBytes bytes(EncodePullReply(
      StoredRecords(static_cast<int>(state.range(0)), static_cast<size_t>(state.range(1)))));
  const wire::DecodeLimits limits;
  for (auto _ : state) {
    auto frame = wire::DecodeFrame(bytes.Borrow(), limits);
    for (auto d : frame->envelope().getPullOk().getMessages()) {
      Received r = wire::DeliveredFromWire(d);
      benchmark::DoNotOptimize(r.body.data());
    }
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()) * state.range(0));
}
BENCHMARK(BM_DecodePullReply)->Args({1, 1024})->Args({64, 1024})->Args({64, 128});

}  // namespace
}  // namespace txmq
