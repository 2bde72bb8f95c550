// The wire side of transactional messages, shared by every kind of
// transaction producer: a connection that announces itself as a checker,
// half messages, ends, and checks handed to a CheckRunner.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "producer/src/check_runner.h"
#include "protocol/src/connection.h"
#include "txmq/producer.h"
#include "txmq/transaction_producer.h"

namespace txmq::producer {

class TxClient {
 public:
  static Result<std::unique_ptr<TxClient>> Open(const ProducerOptions& options,
                                                CheckRunner::CheckFn check);
  // Stops the checkers (waiting for running ones), then the connection.
  ~TxClient();

  // Closes the connection: calls waiting on the broker fail UNAVAILABLE at
  // once, later ones too, and check answers are no longer sent. Thread-safe.
  void Close() { connection_->Close(); }

  // Prepares the messages (ids, checks) in place; TOO_LARGE when together
  // they break the size rule (nothing is sent then).
  Status Prepare(std::vector<Message>& messages);
  // Stores the half messages; idempotent for one tx_id.
  Status SendHalf(const std::string& tx_id, const std::vector<Message>& messages);
  // Records the outcome; returns what the broker recorded (a CONFLICT means
  // the other outcome was recorded first, by a check or an operator).
  Result<TxState> End(const std::string& tx_id, TxState outcome);

  net::Connection& connection() { return *connection_; }

 private:
  TxClient(const ProducerOptions& options) : options_(options) {}
  void OnCheck(wire::Frame frame);

  ProducerOptions options_;
  std::unique_ptr<net::Connection> connection_;
  std::unique_ptr<CheckRunner> runner_;
};

}  // namespace txmq::producer
