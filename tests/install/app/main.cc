// Sends one message through an embedded broker and receives it, using only
// the installed headers and libraries.
#include <txmq/broker.h>
#include <txmq/consumer.h>
#include <txmq/producer.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <thread>

int main(int argc, char** argv) {
  if (argc < 2) return 2;
  txmq::BrokerOptions options;
  options.listen = "tcp://127.0.0.1:*";
  options.data_dir = argv[1];
  auto broker = txmq::Broker::Start(options);
  if (!broker.ok()) return std::fprintf(stderr, "%s\n", broker.status().ToString().c_str()), 1;

  txmq::Producer producer({.broker = (*broker)->endpoint(), .group = "app"});
  if (!producer.Start().ok()) return 1;
  auto sent = producer.Send({.topic = "hello", .body = "from an installed txmq"});
  if (!sent.ok()) return std::fprintf(stderr, "%s\n", sent.status().ToString().c_str()), 1;

  std::atomic<bool> got{false};
  txmq::Consumer consumer({.broker = (*broker)->endpoint(), .group = "app"});
  consumer.Subscribe("hello", [&](const txmq::Received& m) {
    std::printf("received %s: %s\n", m.id.c_str(), m.body.c_str());
    got = true;
    return txmq::ConsumeResult::Success();
  });
  if (!consumer.Start().ok()) return 1;
  for (int i = 0; i < 500 && !got; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  consumer.Shutdown();
  return got ? 0 : 1;
}
