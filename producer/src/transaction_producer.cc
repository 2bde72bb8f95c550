#include "txmq/transaction_producer.h"

#include <future>

#include "producer/src/send_path.h"
#include "producer/src/transaction_producer_impl.h"
#include "protocol/src/curve_keys.h"
#include "protocol/src/log.h"
#include "protocol/src/util.h"
#include "storage/src/local_store_impl.h"
#include "txmq/properties.h"
#include "txmq/version.h"

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

namespace {
std::string About(const std::string& tx_id, const std::string& what) {
  return "transaction " + tx_id + ": " + what;
}
}  // namespace

Status TransactionProducer::Impl::Prepare(Call& call) {
  for (Message& m : call.messages) {
    if (Status s = property::CheckUserProperties(m.properties); !s.ok()) return s;
    // What a consumer needs to address a compensation back. Reserved: they
    // do not count against the size limit.
    m.properties[property::kProducerGroup] = options_.group;
    m.properties[property::kTransactionId] = call.tx_id;
  }
  auto client = groups_->For(call.messages);
  if (!client.ok()) return client.status();
  call.client = *client;
  if (Status s = call.client->Prepare(call.messages); !s.ok()) return s;
  for (const Message& m : call.messages) call.result.message_ids.push_back(m.id);
  // From here on the broker may know the transaction: the caller gets its
  // id with every answer, to follow an error up.
  call.result.transaction_id = call.tx_id;
  return Status::OK();
}

void TransactionProducer::Impl::HalfFailed(Call& call, const Status& s) {
  call.result.status =
      Status(s.code(), About(call.tx_id, "half messages not stored, local transaction not run (" +
                                             Explain(s).message() + ")"));
}

void TransactionProducer::Impl::RunLocal(Call& call, const LocalFn& run_local) {
  TxState local;
  try {
    local = run_local(call.messages, &call.local_status);
    if (local != TxState::kCommit && local != TxState::kUnknown) local = TxState::kRollback;
  } catch (const std::exception& e) {
    Logger("producer")->warn("local transaction {} threw ({}); rolling back", call.tx_id, e.what());
    local = TxState::kRollback;
  } catch (...) {
    Logger("producer")->warn("local transaction {} threw; rolling back", call.tx_id);
    local = TxState::kRollback;
  }
  call.result.local = local;
}

bool TransactionProducer::Impl::AfterLocal(Call& call, TxState* end) {
  TransactionResult& result = call.result;
  if (!call.local_status.ok()) {
    if (call.local_status.code() != StatusCode::kAborted) {
      // A commit that failed otherwise may still have written (a failed
      // fdatasync: LevelDB may show the batch after a reopen). Not the
      // library's to decide: no end, and check-back asks the store, which
      // answers from what it holds (UNKNOWN while it cannot tell).
      result.status = Status(
          call.local_status.code(),
          About(call.tx_id, "local commit failed (" + call.local_status.message() +
                                "); whether it was written is not known, so no end was sent and "
                                "check-back decides from the local store: do not repeat the "
                                "call, follow the transaction up"));
      Logger("producer")->warn("{}", result.status.message());
      return false;
    }
    result.status =
        Status(call.local_status.code(), About(call.tx_id, call.local_status.message()));
    // Refused, nothing written (a check rolled it back first, a conflict):
    // the broker side is rolled back already, or is now.
    *end = TxState::kRollback;
  } else if (*result.local == TxState::kUnknown) {
    return false;  // check-back decides
  } else {
    *end = *result.local;
  }
  if (!background()) return true;
  call.client->ends().Add(call.tx_id, *end);
  result.end_pending = true;
  return false;
}

void TransactionProducer::Impl::AfterEnd(Call& call, TxState sent, Result<TxState> recorded) {
  TransactionResult& result = call.result;
  if (!call.local_status.ok()) {  // result.status says why already
    if (recorded.ok()) result.outcome = *recorded;
    return;
  }
  if (!recorded.ok()) {
    const Status why = Explain(recorded.status());
    result.status =
        Status(why.code(), About(call.tx_id, std::string(TxStateName(sent)) +
                                                 " not confirmed by the broker (" + why.message() +
                                                 "); its check-back decides. The local transaction "
                                                 "ran: do not repeat the call, follow the "
                                                 "transaction up"));
    Logger("producer")->warn("{}", result.status.message());
    return;
  }
  result.outcome = *recorded;
  if (result.outcome == TxState::kRollback && sent == TxState::kCommit) {
    result.status = Status::Aborted(
        About(call.tx_id,
              "the local transaction committed, but the broker had already rolled the transaction "
              "back (a check-back answered ROLLBACK, or an operator): its messages will not be "
              "delivered"));
  } else if (result.outcome == TxState::kCommit && sent == TxState::kRollback) {
    result.status = Status::Conflict(
        About(call.tx_id,
              "the local transaction rolled back, but the broker had already committed the "
              "transaction (an operator): its messages are delivered"));
  }
  if (!result.ok()) Logger("producer")->error("{}", result.status.message());
}

TransactionResult TransactionProducer::Impl::Run(Call call, const LocalFn& run_local) {
  if (Status s = Prepare(call); !s.ok()) return Failed(s);
  if (Status s = call.client->SendHalf(call.tx_id, call.messages); !s.ok()) {
    if (s.code() == StatusCode::kWrongGroup) groups_->Forget(call.messages);
    HalfFailed(call, s);
    return std::move(call.result);
  }
  RunLocal(call, run_local);
  TxState end;
  if (AfterLocal(call, &end)) AfterEnd(call, end, call.client->End(call.tx_id, end));
  return std::move(call.result);
}

Status TransactionProducer::Impl::Explain(Status s) const {
  if (s.ok() || !closing_.load()) return s;
  return Status(s.code(), "transaction producer shut down: " + s.message());
}

Status TransactionProducer::Impl::NotRunning() {
  std::lock_guard<std::mutex> lock(mu_);
  return state_ == State::kShutDown
             ? Status::FailedPrecondition("transaction producer is shut down")
             : Status::FailedPrecondition("transaction producer is not started");
}

Status TransactionProducer::Impl::Start() {
  std::lock_guard<std::mutex> lock(mu_);
  if (state_ == State::kRunning) {
    return Status::FailedPrecondition("transaction producer already started");
  }
  if (state_ == State::kShutDown) {
    return Status::FailedPrecondition("transaction producer was shut down; make a new one");
  }
  producer::CheckRunner::CheckFn check;
  std::unique_ptr<producer::StoreTransactions> store_txs;
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
    store_txs =
        std::make_unique<producer::StoreTransactions>(*store_, options_.transaction_record_horizon);
    check = [txs = store_txs.get()](const CheckRequest& request) {
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
  if (options_.transaction_window < 1 || options_.local_threads < 1 ||
      options_.local_threads > 256) {
    return Status::InvalidArgument("transaction_window (" +
                                   std::to_string(options_.transaction_window) +
                                   ") must be at least 1 and local_threads (" +
                                   std::to_string(options_.local_threads) + ") 1-256");
  }
  auto home = producer::TxClient::Open(options_, check);
  if (!home.ok()) return home.status();
  client_id_ = (*home)->connection().client_id();
  // Another broker group's client: the same producer, named after its
  // group there (stable, so that group's checks of an earlier run find it).
  auto open_group = [options = options_, check, home_id = client_id_](const std::string& group,
                                                                      const std::string& broker) {
    ProducerOptions o = options;
    o.broker = broker;
    o.client_id = GroupClientId(home_id, group);
    return producer::TxClient::Open(o, check);
  };
  groups_ = std::make_unique<producer::TxGroups>(std::move(home.value()), std::move(open_group),
                                                 options_.send_timeout);
  // Plain sends (Send) go through connections of their own to other
  // groups: they answer no checks.
  auto keys =
      curve::LoadClientKeys(options_.curve_key, options_.server_key, "curve_key", "server_key");
  if (!keys.ok()) return keys.status();
  router_ = std::make_shared<producer::GroupRouter>(
      groups_->home().connection(),
      net::ConnectionOptions{.broker = options_.broker,
                             .client_id = client_id_ + ".send",
                             .role = wire::Role::PRODUCER,
                             .group = options_.group,
                             .software = std::string("txmq-tx-producer ") + kVersion,
                             .curve = *keys},
      options_.send_timeout);
  locals_ = std::make_unique<producer::TaskThreads>(options_.local_threads);
  store_txs_ = std::move(store_txs);
  state_ = State::kRunning;
  gate_.Open();
  return Status::OK();
}

void TransactionProducer::Impl::Shutdown() {
  std::lock_guard<std::mutex> one_at_a_time(shutdown_mu_);  // a second caller waits too
  {
    std::lock_guard<std::mutex> lock(mu_);
    const bool running = state_ == State::kRunning;
    state_ = State::kShutDown;
    if (!running) return;
  }
  gate_.Close();  // new calls fail from here on
  {
    std::lock_guard<std::mutex> lock(window_mu_);
    window_closed_ = true;  // calls waiting for room fail too
    window_cv_.notify_all();
  }
  // Calls in flight get a moment to end their transactions properly, and
  // background ends as long again to be confirmed; past that, whatever
  // still waits on the broker fails at once (an undelivered end is left to
  // check-back). Only a local transaction still running can hold Shutdown
  // after that: what it uses must not be freed under it.
  const bool idle = gate_.WaitIdle(options_.send_timeout);
  if (idle) {
    if (Status s = FlushAll(options_.send_timeout); !s.ok()) {
      Logger("producer")
          ->warn("transaction producer {} shutting down: {}", client_id_, s.message());
    }
  } else {
    closing_ = true;
    groups_->CloseAll();
    gate_.WaitIdle();
  }
  locals_.reset();               // idle: no task is left
  if (router_) router_->Shut();  // a completion still holding it reroutes nothing
  router_.reset();               // its connections route through home's
  groups_.reset();               // stops the checkers (waiting for running ones) first
  store_txs_.reset();
}

TransactionResult TransactionProducer::Impl::SendWithChecker(
    std::vector<Message> messages,
    const std::function<TxState(const std::vector<Message>&)>& local) {
  producer::CallGate::Pass pass(gate_);
  if (!pass) return Failed(NotRunning());
  if (store_txs_) {
    return Failed(Status::FailedPrecondition(
        "this producer answers checks from its local store: pass a local transaction that takes "
        "a LocalTxn&"));
  }
  return Run(Call{NewUuidV7(), std::move(messages)},
             [&](const std::vector<Message>& sent, Status*) { return local(sent); });
}

TransactionResult TransactionProducer::Impl::SendWithStore(
    std::vector<Message> messages,
    const std::function<TxState(LocalTxn&, const std::vector<Message>&)>& local) {
  producer::CallGate::Pass pass(gate_);
  if (!pass) return Failed(NotRunning());
  producer::StoreTransactions* txs = store_txs_.get();
  if (txs == nullptr) {
    return Failed(
        Status::FailedPrecondition("this producer has no local store; use its checker form"));
  }
  const std::string tx_id = txs->NewTransactionId();
  txs->Begin(tx_id);
  auto result = Run(Call{tx_id, std::move(messages)},
                    [&](const std::vector<Message>& sent, Status* local_status) {
                      LocalTxn txn = store_->Begin();
                      TxState decision = local(txn, sent);
                      if (decision != TxState::kCommit) return decision;  // nothing is written
                      txs->RecordCommit(txn, tx_id);
                      *local_status = txn.Commit();
                      return decision;
                    });
  txs->End(tx_id);
  return result;
}

Result<SendResult> TransactionProducer::Impl::Send(Message message) {
  producer::CallGate::Pass pass(gate_);
  if (!pass) return NotRunning();
  net::Connection& connection = groups_->home().connection();
  if (Status s = property::CheckUserProperties(message.properties); !s.ok()) return s;
  if (Status s = producer::PrepareMessage(message, connection); !s.ok()) return s;
  std::promise<Result<SendResult>> promise;
  auto future = promise.get_future();
  // Routed like a Producer's: to the group serving the key's queue.
  producer::SendRouted(router_, options_, std::make_shared<const Message>(std::move(message)),
                       [&promise](Result<SendResult> r) { promise.set_value(std::move(r)); });
  auto r = future.get();
  if (!r.ok()) return Explain(r.status());
  return r;
}

TransactionProducer::TransactionProducer(ProducerOptions options, TransactionChecker checker)
    : options_(std::move(options)),
      impl_(std::make_unique<Impl>(options_, std::move(checker), nullptr)) {}

namespace {
// Stable across restarts, so the broker routes this store's checks back to
// it; the group in it keeps producers of different groups on one store
// apart (one routing id per connection).
ProducerOptions WithStoreClientId(ProducerOptions options, const LocalStore& store) {
  if (options.client_id.empty()) options.client_id = store.instance_id() + "/" + options.group;
  return options;
}
}  // namespace

TransactionProducer::TransactionProducer(ProducerOptions options, LocalStore& store)
    : options_(WithStoreClientId(std::move(options), store)),
      impl_(std::make_unique<Impl>(options_, nullptr, &store)) {}

TransactionProducer::~TransactionProducer() { Shutdown(); }

Status TransactionProducer::Start() { return impl_->Start(); }

void TransactionProducer::Shutdown() { impl_->Shutdown(); }

const std::string& TransactionProducer::client_id() const { return impl_->client_id(); }

TransactionResult TransactionProducer::SendInTransaction(
    Message message, const std::function<TxState(const Message&)>& local) {
  std::vector<Message> messages;
  messages.push_back(std::move(message));
  return SendInTransaction(std::move(messages),
                           [&local](const std::vector<Message>& m) { return local(m.front()); });
}

TransactionResult TransactionProducer::SendInTransaction(
    std::vector<Message> messages,
    const std::function<TxState(const std::vector<Message>&)>& local) {
  return impl_->SendWithChecker(std::move(messages), local);
}

TransactionResult TransactionProducer::SendInTransaction(
    Message message, const std::function<TxState(LocalTxn&, const Message&)>& local) {
  std::vector<Message> messages;
  messages.push_back(std::move(message));
  return SendInTransaction(
      std::move(messages),
      [&local](LocalTxn& txn, const std::vector<Message>& m) { return local(txn, m.front()); });
}

TransactionResult TransactionProducer::SendInTransaction(
    std::vector<Message> messages,
    const std::function<TxState(LocalTxn&, const std::vector<Message>&)>& local) {
  return impl_->SendWithStore(std::move(messages), local);
}

std::future<TransactionResult> TransactionProducer::SendInTransactionAsync(
    Message message, std::function<TxState(const Message&)> local) {
  std::vector<Message> messages;
  messages.push_back(std::move(message));
  return impl_->AsyncWithChecker(
      std::move(messages),
      [local = std::move(local)](const std::vector<Message>& m) { return local(m.front()); });
}

std::future<TransactionResult> TransactionProducer::SendInTransactionAsync(
    std::vector<Message> messages, std::function<TxState(const std::vector<Message>&)> local) {
  return impl_->AsyncWithChecker(std::move(messages), std::move(local));
}

std::future<TransactionResult> TransactionProducer::SendInTransactionAsync(
    Message message, std::function<TxState(LocalTxn&, const Message&)> local) {
  std::vector<Message> messages;
  messages.push_back(std::move(message));
  return impl_->AsyncWithStore(
      std::move(messages),
      [local = std::move(local)](LocalTxn& txn, const std::vector<Message>& m) {
        return local(txn, m.front());
      });
}

std::future<TransactionResult> TransactionProducer::SendInTransactionAsync(
    std::vector<Message> messages,
    std::function<TxState(LocalTxn&, const std::vector<Message>&)> local) {
  return impl_->AsyncWithStore(std::move(messages), std::move(local));
}

Status TransactionProducer::FlushEnds(std::chrono::milliseconds timeout) {
  return impl_->FlushEnds(timeout);
}

Result<SendResult> TransactionProducer::Send(Message message) {
  return impl_->Send(std::move(message));
}

}  // namespace txmq
