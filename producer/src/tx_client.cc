#include "producer/src/tx_client.h"

#include <future>

#include "producer/src/send_path.h"
#include "protocol/src/log.h"
#include "protocol/src/message_codec.h"
#include "protocol/src/util.h"
#include "txmq/names.h"
#include "txmq/version.h"

namespace txmq::producer {

Result<std::unique_ptr<TxClient>> TxClient::Open(const ProducerOptions& options,
                                                 CheckRunner::CheckFn check) {
  if (Status s = ValidateName("producer group", options.group); !s.ok()) return s;
  if (options.send_timeout.count() <= 0 || options.retries < 0 || options.checker_threads < 1) {
    return Status::InvalidArgument(
        "send_timeout must be positive, retries not negative and "
        "checker_threads at least 1");
  }
  auto client = std::unique_ptr<TxClient>(new TxClient(options));
  TxClient* self = client.get();
  client->runner_ = std::make_unique<CheckRunner>(
      options.checker_threads, std::move(check),
      [self](uint64_t request_id, const std::string& tx_id, CheckAnswer answer) {
        wire::OutFrame reply(request_id);
        auto r = reply.envelope().initCheckReply();
        r.setTransactionId(tx_id);
        r.setOutcome(answer.state == TxState::kCommit     ? wire::TxOutcome::COMMIT
                     : answer.state == TxState::kRollback ? wire::TxOutcome::ROLLBACK
                                                          : wire::TxOutcome::UNKNOWN);
        r.setError(answer.error);
        self->connection_->Reply(std::move(reply));
      });
  auto keys =
      curve::LoadClientKeys(options.curve_key, options.server_key, "curve_key", "server_key");
  if (!keys.ok()) return keys.status();
  net::ConnectionOptions co;
  co.broker = options.broker;
  co.curve = *keys;
  co.client_id = options.client_id;
  co.role = wire::Role::PRODUCER;
  co.group = options.group;
  co.checker = true;
  co.software = std::string("txmq-tx-producer ") + kVersion;
  auto connection =
      net::Connection::Open(co, [self](wire::Frame f) { self->OnCheck(std::move(f)); });
  if (!connection.ok()) return connection.status();
  client->connection_ = std::move(connection.value());
  client->ends_ = std::make_unique<EndSender>(*client->connection_, options);
  return client;
}

TxClient::~TxClient() {
  runner_->Stop();  // its replies need the connection, so it goes first
  ends_->Stop();
  connection_.reset();  // answers what is in flight (UNAVAILABLE) before ends_ goes
  ends_.reset();
}

void TxClient::OnCheck(wire::Frame frame) {
  auto env = frame.envelope();
  auto c = env.getCheckTransaction();
  CheckRequest request;
  request.transaction_id = wire::ToString(c.getTransactionId());
  request.producer_group = wire::ToString(c.getProducerGroup());
  request.check_count = c.getCheckCount();
  request.born_at = FromEpochMs(c.getBornMs());
  for (auto m : c.getMessages()) {
    Message message;
    message.id = wire::ToString(m.getId());
    message.topic = wire::ToString(m.getTopic());
    message.key = wire::ToString(m.getKey());
    message.body = wire::ToString(m.getBody());
    message.delay = std::chrono::milliseconds(m.getDelayMs());
    for (auto p : m.getProperties()) {
      message.properties.emplace(wire::ToString(p.getKey()), wire::ToString(p.getValue()));
    }
    request.messages.push_back(std::move(message));
  }
  if (request.messages.empty()) {  // nothing to judge by: say so rather than guess
    wire::OutFrame reply(env.getRequestId());
    auto r = reply.envelope().initCheckReply();
    r.setTransactionId(request.transaction_id);
    r.setOutcome(wire::TxOutcome::UNKNOWN);
    r.setError("check named no messages");
    connection_->Reply(std::move(reply));
    return;
  }
  runner_->Submit(env.getRequestId(), std::move(request));
}

Status TxClient::Prepare(std::vector<Message>& messages) {
  if (messages.empty()) return Status::InvalidArgument("a transaction needs at least one message");
  for (size_t i = 0; i < messages.size(); ++i) {
    if (Status s = PrepareMessage(messages[i], *connection_); !s.ok()) {
      return messages.size() == 1
                 ? s
                 : Status(s.code(), "message " + std::to_string(i) + ": " + s.message());
    }
  }
  // Checked before anything is sent: one frame carries them all.
  return CheckTotalSize(messages, *connection_);
}

namespace {

TxState FromWire(wire::TxState state) {
  return state == wire::TxState::COMMITTED ? TxState::kCommit : TxState::kRollback;
}

}  // namespace

void TxClient::SendHalfAsync(const std::string& tx_id,
                             std::shared_ptr<const std::vector<Message>> messages, StatusFn done) {
  const int64_t born_ms = NowMs();
  // Taken once: every attempt carries the same ends.
  auto ends = std::make_shared<std::vector<QueuedEnd>>(ends_->Take());
  CallWithRetries(
      *connection_,
      [this, tx_id, messages, ends, born_ms](wire::Envelope::Builder env) {
        auto half = env.initSendHalf();
        half.setTransactionId(tx_id);
        half.setProducerGroup(options_.group);
        auto list = half.initMessages(static_cast<unsigned>(messages->size()));
        for (unsigned i = 0; i < messages->size(); ++i) {
          wire::MessageToWire((*messages)[i], born_ms, list[i]);
        }
        if (ends->empty()) return;
        auto carried = half.initEnds(static_cast<unsigned>(ends->size()));
        for (unsigned i = 0; i < ends->size(); ++i) {
          carried[i].setTransactionId((*ends)[i].tx_id);
          carried[i].setOutcome((*ends)[i].outcome == TxState::kCommit ? wire::TxOutcome::COMMIT
                                                                       : wire::TxOutcome::ROLLBACK);
        }
      },
      options_.send_timeout, options_.retries,
      [this, tx_id, ends, done = std::move(done)](Result<wire::Frame> reply) {
        std::vector<EndAnswer> answers;
        if (reply.ok()) {
          for (auto e : reply->envelope().getSendHalfOk().getEnds()) {
            auto error = e.getError();
            answers.push_back(
                {wire::ToString(e.getTransactionId()),
                 Status(wire::FromWireCode(error.getCode()), wire::ToString(error.getMessage())),
                 FromWire(e.getState())});
          }
        }
        if (reply.ok() && answers.empty() && !ends->empty()) ends_->StopCarrying();
        // Unanswered ones (a failed half) wait to be sent again.
        if (!ends->empty()) ends_->Settle(std::move(*ends), answers);
        if (!reply.ok()) return done(reply.status());
        if (reply->envelope().getSendHalfOk().getState() != wire::TxState::PREPARED) {
          return done(Status::Conflict("transaction '" + tx_id +
                                       "' already ended before its half arrived"));
        }
        done(Status::OK());
      });
}

Status TxClient::SendHalf(const std::string& tx_id, const std::vector<Message>& messages) {
  std::promise<Status> promise;
  auto future = promise.get_future();
  // Not owned: the request is resent only before `done`, and this waits
  // for `done`.
  std::shared_ptr<const std::vector<Message>> borrowed(std::shared_ptr<void>(), &messages);
  SendHalfAsync(tx_id, std::move(borrowed),
                [&promise](Status s) { promise.set_value(std::move(s)); });
  return future.get();
}

void TxClient::EndAsync(const std::string& tx_id, TxState outcome, EndFn done) {
  CallWithRetries(
      *connection_,
      [tx_id, outcome](wire::Envelope::Builder env) {
        auto end = env.initEndTransaction();
        end.setTransactionId(tx_id);
        end.setOutcome(outcome == TxState::kCommit ? wire::TxOutcome::COMMIT
                                                   : wire::TxOutcome::ROLLBACK);
      },
      options_.send_timeout, options_.retries,
      [tx_id, outcome, done = std::move(done)](Result<wire::Frame> reply) {
        if (reply.ok()) return done(FromWire(reply->envelope().getEndTransactionOk().getState()));
        if (reply.status().code() == StatusCode::kConflict) {
          // Only two final states exist: the other one won.
          Logger("producer")->warn("transaction {}: {}", tx_id, reply.status().ToString());
          return done(outcome == TxState::kCommit ? TxState::kRollback : TxState::kCommit);
        }
        done(reply.status());
      });
}

Result<TxState> TxClient::End(const std::string& tx_id, TxState outcome) {
  std::promise<Result<TxState>> promise;
  auto future = promise.get_future();
  EndAsync(tx_id, outcome, [&promise](Result<TxState> r) { promise.set_value(std::move(r)); });
  return future.get();
}

}  // namespace txmq::producer
