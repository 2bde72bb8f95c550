#include "txmq/transaction_producer.h"

#include "producer/src/send_path.h"
#include "producer/src/store_checker.h"
#include "producer/src/tx_client.h"
#include "protocol/src/log.h"
#include "protocol/src/util.h"
#include "storage/src/local_store_impl.h"

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
  std::unique_ptr<producer::StoreTransactions> store_txs;  // store-backed only
  std::string group;

  // Runs one transaction: half, local part (`run_local` returns the
  // decision, and for a store the local commit's status), end.
  Result<TransactionResult> Run(
      std::vector<Message> messages, const std::string& tx_id,
      const std::function<TxState(const std::vector<Message>&, Status*)>& run_local);
};

Result<TransactionResult> TransactionProducer::Impl::Run(
    std::vector<Message> messages, const std::string& tx_id,
    const std::function<TxState(const std::vector<Message>&, Status*)>& run_local) {
  for (Message& m : messages) {
    // What a consumer needs to address a compensation back; stamped before
    // Prepare, whose size check must count it.
    m.properties["txmq-producer-group"] = group;
    m.properties["txmq-tx"] = tx_id;
  }
  if (Status s = client->Prepare(messages); !s.ok()) return s;
  TransactionResult result;
  result.transaction_id = tx_id;
  for (const Message& m : messages) result.message_ids.push_back(m.id);
  if (Status s = client->SendHalf(tx_id, messages); !s.ok()) return s;

  Status local_status;
  try {
    result.local = run_local(messages, &local_status);
    if (result.local != TxState::kCommit && result.local != TxState::kUnknown) {
      result.local = TxState::kRollback;
    }
  } catch (const std::exception& e) {
    Logger("producer")->warn("local transaction {} threw ({}); rolling back", tx_id, e.what());
    result.local = TxState::kRollback;
  } catch (...) {
    Logger("producer")->warn("local transaction {} threw; rolling back", tx_id);
    result.local = TxState::kRollback;
  }
  if (!local_status.ok()) {
    // The local commit failed (or a check rolled it back first): say so;
    // the broker side is rolled back already or will be by check-back.
    client->End(tx_id, TxState::kRollback);
    return local_status;
  }
  if (result.local == TxState::kUnknown) return result;  // check-back decides

  auto recorded = client->End(tx_id, result.local);
  if (recorded.ok()) {
    result.outcome = *recorded;
  } else {
    result.end_status = recorded.status();
    Logger("producer")
        ->warn("transaction {}: {} not confirmed ({}); check-back will decide", tx_id,
               TxStateName(result.local), recorded.status().ToString());
  }
  return result;
}

TransactionProducer::TransactionProducer(ProducerOptions options, TransactionChecker checker)
    : options_(std::move(options)), checker_(std::move(checker)) {}

TransactionProducer::TransactionProducer(ProducerOptions options, LocalStore& store)
    : options_(std::move(options)), store_(&store) {
  // Stable across restarts, so the broker routes this store's checks back to
  // it; the group in it keeps producers of different groups on one store
  // apart (one routing id per connection).
  if (options_.client_id.empty()) options_.client_id = store.instance_id() + "/" + options_.group;
}

TransactionProducer::~TransactionProducer() { Shutdown(); }

Status TransactionProducer::Start() {
  if (impl_) return Status::FailedPrecondition("transaction producer already started");
  auto impl = std::make_unique<Impl>();
  impl->group = options_.group;
  producer::CheckRunner::CheckFn check;
  if (store_ != nullptr) {
    // Below this, a check for a transaction a few minutes old could not tell
    // "never committed" from "committed, record cleaned up" (it answers
    // UNKNOWN then), so failed local transactions would all end up stuck.
    constexpr auto kMinHorizon = std::chrono::hours(1);
    if (options_.transaction_record_horizon < kMinHorizon) {
      return Status::InvalidArgument(
          "transaction_record_horizon of " +
          FormatDurationMs(options_.transaction_record_horizon.count()) +
          " is below 1h: transaction records must outlive the broker's check-backs");
    }
    impl->store_txs =
        std::make_unique<producer::StoreTransactions>(*store_, options_.transaction_record_horizon);
    check = [txs = impl->store_txs.get()](const CheckRequest& request) {
      producer::CheckAnswer answer;
      answer.state = txs->Check(request.transaction_id, &answer.error);
      return answer;
    };
  } else if (checker_) {
    check = [checker = checker_](const CheckRequest& request) {
      return producer::CheckAnswer{checker(request), ""};
    };
  } else {
    return Status::InvalidArgument("a transaction producer needs a checker or a local store");
  }
  auto client = producer::TxClient::Open(options_, std::move(check));
  if (!client.ok()) return client.status();
  impl->client = std::move(client.value());
  impl_ = std::move(impl);
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
  if (impl_->store_txs) {
    return Status::FailedPrecondition(
        "this producer answers checks from its local store: pass a local transaction that takes "
        "a LocalTxn&");
  }
  return impl_->Run(std::move(messages), NewUuidV7(),
                    [&](const std::vector<Message>& sent, Status*) { return local(sent); });
}

Result<TransactionResult> TransactionProducer::SendInTransaction(
    Message message, const std::function<TxState(LocalTxn&, const Message&)>& local) {
  std::vector<Message> messages;
  messages.push_back(std::move(message));
  return SendInTransaction(
      std::move(messages),
      [&local](LocalTxn& txn, const std::vector<Message>& m) { return local(txn, m.front()); });
}

Result<TransactionResult> TransactionProducer::SendInTransaction(
    std::vector<Message> messages,
    const std::function<TxState(LocalTxn&, const std::vector<Message>&)>& local) {
  if (!impl_) return Status::FailedPrecondition("transaction producer is not started");
  producer::StoreTransactions* txs = impl_->store_txs.get();
  if (txs == nullptr) {
    return Status::FailedPrecondition("this producer has no local store; use its checker form");
  }
  const std::string tx_id = txs->NewTransactionId();
  txs->Begin(tx_id);
  auto result = impl_->Run(std::move(messages), tx_id,
                           [&](const std::vector<Message>& sent, Status* local_status) {
                             LocalTxn txn = store_->Begin();
                             TxState decision = local(txn, sent);
                             if (decision != TxState::kCommit)
                               return decision;  // nothing is written
                             txs->RecordCommit(txn, tx_id);
                             *local_status = txn.Commit();
                             return decision;
                           });
  txs->End(tx_id);
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
