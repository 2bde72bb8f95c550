// The wire side of transactional messages, shared by every kind of
// transaction producer: a connection that announces itself as a checker,
// half messages, ends, and checks handed to a CheckRunner.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "producer/src/check_runner.h"
#include "producer/src/end_sender.h"
#include "protocol/src/connection.h"
#include "txmq/producer.h"
#include "txmq/transaction_producer.h"

namespace txmq::producer {

class TxClient {
 public:
  static Result<std::unique_ptr<TxClient>> Open(const ProducerOptions& options,
                                                CheckRunner::CheckFn check);
  // Stops the checkers (waiting for running ones) and the background
  // ends (dropping those unconfirmed), then the connection.
  ~TxClient();

  // Closes the connection: calls waiting on the broker fail UNAVAILABLE at
  // once, later ones too, and check answers are no longer sent. Thread-safe.
  void Close() { connection_->Close(); }

  // Prepares the messages (ids, checks) in place; TOO_LARGE when together
  // they break the size rule (nothing is sent then).
  Status Prepare(std::vector<Message>& messages);
  // Stores the half messages; idempotent for one tx_id. Background ends
  // waiting in ends() ride along. `done` runs once, on the I/O thread (or
  // at once when the request is refused unsent).
  using StatusFn = std::function<void(Status)>;
  void SendHalfAsync(const std::string& tx_id, std::shared_ptr<const std::vector<Message>> messages,
                     StatusFn done);
  Status SendHalf(const std::string& tx_id, const std::vector<Message>& messages);
  // Records the outcome and waits for it; returns what the broker recorded
  // (a CONFLICT means the other outcome was recorded first, by a check or
  // an operator). `done` as for SendHalfAsync.
  using EndFn = std::function<void(Result<TxState>)>;
  void EndAsync(const std::string& tx_id, TxState outcome, EndFn done);
  Result<TxState> End(const std::string& tx_id, TxState outcome);

  // Ends sent in the background (TransactionEndMode::kBackground).
  EndSender& ends() { return *ends_; }

  net::Connection& connection() { return *connection_; }

 private:
  TxClient(const ProducerOptions& options) : options_(options) {}
  void OnCheck(wire::Frame frame);

  ProducerOptions options_;
  std::unique_ptr<net::Connection> connection_;
  std::unique_ptr<CheckRunner> runner_;
  std::unique_ptr<EndSender> ends_;  // replies use it: goes after connection_
};

}  // namespace txmq::producer
