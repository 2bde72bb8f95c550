#include "txmq/transaction_producer.h"

#include "producer/src/send_path.h"
#include "producer/src/tx_client.h"
#include "protocol/src/log.h"
#include "protocol/src/util.h"

namespace txmq {

const char* TxStateName(TxState state) {
  switch (state) {
    case TxState::kCommit:
      return "COMMIT";
    case TxState::kRollback:
      return "ROLLBACK";
    case TxState::kUnknown:
      return "UNKNOWN";
  }
  return "UNKNOWN";
}

class TransactionProducer::Impl {
 public:
  std::unique_ptr<producer::TxClient> client;
};

TransactionProducer::TransactionProducer(ProducerOptions options, TransactionChecker checker)
    : options_(std::move(options)), checker_(std::move(checker)) {}

TransactionProducer::~TransactionProducer() { Shutdown(); }

Status TransactionProducer::Start() {
  if (impl_) return Status::FailedPrecondition("transaction producer already started");
  if (!checker_) return Status::InvalidArgument("a transaction producer needs a checker");
  auto client = producer::TxClient::Open(options_, checker_);
  if (!client.ok()) return client.status();
  impl_ = std::make_unique<Impl>();
  impl_->client = std::move(client.value());
  return Status::OK();
}

void TransactionProducer::Shutdown() { impl_.reset(); }

const std::string& TransactionProducer::client_id() const {
  static const std::string kNone;
  return impl_ ? impl_->client->connection().client_id() : kNone;
}

Result<TransactionResult> TransactionProducer::SendInTransaction(
    Message message, const std::function<TxState(const Message&)>& local) {
  std::vector<Message> messages;
  messages.push_back(std::move(message));
  return SendInTransaction(std::move(messages),
                           [&local](const std::vector<Message>& m) { return local(m.front()); });
}

Result<TransactionResult> TransactionProducer::SendInTransaction(
    std::vector<Message> messages,
    const std::function<TxState(const std::vector<Message>&)>& local) {
  if (!impl_) return Status::FailedPrecondition("transaction producer is not started");
  producer::TxClient& client = *impl_->client;
  if (Status s = client.Prepare(messages); !s.ok()) return s;
  TransactionResult result;
  result.transaction_id = NewUuidV7();
  for (const Message& m : messages) result.message_ids.push_back(m.id);
  if (Status s = client.SendHalf(result.transaction_id, messages); !s.ok()) return s;

  try {
    result.local = local(messages);
    if (result.local != TxState::kCommit && result.local != TxState::kUnknown) {
      result.local = TxState::kRollback;
    }
  } catch (const std::exception& e) {
    Logger("producer")
        ->warn("local transaction {} threw ({}); rolling back", result.transaction_id, e.what());
    result.local = TxState::kRollback;
  } catch (...) {
    Logger("producer")->warn("local transaction {} threw; rolling back", result.transaction_id);
    result.local = TxState::kRollback;
  }
  if (result.local == TxState::kUnknown) return result;  // check-back decides

  auto recorded = client.End(result.transaction_id, result.local);
  if (recorded.ok()) {
    result.outcome = *recorded;
  } else {
    // The broker did not confirm; its check-back will ask the checker.
    result.end_status = recorded.status();
    Logger("producer")
        ->warn("transaction {}: {} not confirmed ({}); check-back will decide",
               result.transaction_id, TxStateName(result.local), recorded.status().ToString());
  }
  return result;
}

Result<SendResult> TransactionProducer::Send(Message message) {
  if (!impl_) return Status::FailedPrecondition("transaction producer is not started");
  net::Connection& connection = impl_->client->connection();
  if (Status s = producer::PrepareMessage(message, connection); !s.ok()) return s;
  std::promise<Result<SendResult>> promise;
  auto future = promise.get_future();
  producer::SendWithRetries(connection, options_,
                            std::make_shared<const Message>(std::move(message)),
                            [&promise](Result<SendResult> r) { promise.set_value(std::move(r)); });
  return future.get();
}

}  // namespace txmq
