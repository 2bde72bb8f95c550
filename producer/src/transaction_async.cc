// TransactionProducer::SendInTransactionAsync: many transactions of one
// producer in flight. A call takes a place in the window (waiting while
// `transaction_window` are in flight) and sends the half without waiting;
// the half's completion (I/O thread) posts the local transaction to
// `locals_`; the local step queues a background end, or sends a confirmed
// one whose completion (I/O thread again) completes the call. Completing
// sets the future, gives the place back and, last, leaves the call gate:
// from then on Shutdown may free what the call used.
#include "producer/src/transaction_producer_impl.h"
#include "protocol/src/log.h"
#include "protocol/src/util.h"

namespace txmq {

std::future<TransactionResult> TransactionProducer::Impl::AsyncWithChecker(
    std::vector<Message> messages, std::function<TxState(const std::vector<Message>&)> local) {
  auto call = std::make_shared<AsyncCall>();
  call->pass = std::make_unique<producer::CallGate::Pass>(gate_);
  auto future = call->promise.get_future();
  if (!*call->pass) {
    call->promise.set_value(Failed(NotRunning()));
    return future;
  }
  if (store_txs_) {
    call->promise.set_value(Failed(Status::FailedPrecondition(
        "this producer answers checks from its local store: pass a local transaction that takes "
        "a LocalTxn&")));
    return future;
  }
  call->tx_id = NewUuidV7();
  call->messages = std::move(messages);
  call->run_local = [local = std::move(local)](const std::vector<Message>& sent, Status*) {
    return local(sent);
  };
  RunAsync(std::move(call));
  return future;
}

std::future<TransactionResult> TransactionProducer::Impl::AsyncWithStore(
    std::vector<Message> messages,
    std::function<TxState(LocalTxn&, const std::vector<Message>&)> local) {
  auto call = std::make_shared<AsyncCall>();
  call->pass = std::make_unique<producer::CallGate::Pass>(gate_);
  auto future = call->promise.get_future();
  if (!*call->pass) {
    call->promise.set_value(Failed(NotRunning()));
    return future;
  }
  producer::StoreTransactions* txs = store_txs_.get();
  if (txs == nullptr) {
    call->promise.set_value(Failed(
        Status::FailedPrecondition("this producer has no local store; use its checker form")));
    return future;
  }
  call->tx_id = txs->NewTransactionId();
  call->messages = std::move(messages);
  txs->Begin(call->tx_id);
  call->on_done = [txs, tx_id = call->tx_id] { txs->End(tx_id); };
  call->run_local = [this, txs, tx_id = call->tx_id, local = std::move(local)](
                        const std::vector<Message>& sent, Status* local_status) {
    LocalTxn txn = store_->Begin();
    TxState decision = local(txn, sent);
    if (decision != TxState::kCommit) return decision;  // nothing is written
    txs->RecordCommit(txn, tx_id);
    *local_status = txn.Commit();
    return decision;
  };
  RunAsync(std::move(call));
  return future;
}

void TransactionProducer::Impl::RunAsync(std::shared_ptr<AsyncCall> call) {
  if (Status s = Prepare(*call); !s.ok()) {
    call->result = Failed(s);
    return Complete(call);
  }
  if (!EnterWindow()) {
    call->result = Failed(Status::FailedPrecondition("transaction producer is shut down"));
    return Complete(call);
  }
  call->in_window = true;
  // The messages stay in the call, which the half's request keeps alive.
  std::shared_ptr<const std::vector<Message>> messages(call, &call->messages);
  call->client->SendHalfAsync(call->tx_id, std::move(messages), [this, call](Status s) {
    if (!s.ok()) {
      if (s.code() == StatusCode::kWrongGroup) groups_->Forget(call->messages);
      HalfFailed(*call, s);
      return Complete(call);
    }
    locals_->Post([this, call] { LocalStep(call); });  // never block the I/O thread
  });
}

void TransactionProducer::Impl::LocalStep(std::shared_ptr<AsyncCall> call) {
  if (closing_.load()) {
    // Shutdown gave up waiting: the half is left to check-back, which
    // finds no local commit.
    call->result.status =
        Status::Unavailable("transaction " + call->tx_id +
                            ": transaction producer shut down before the local transaction ran");
    return Complete(call);
  }
  RunLocal(*call, call->run_local);
  TxState end;
  if (!AfterLocal(*call, &end)) return Complete(call);
  call->client->EndAsync(call->tx_id, end, [this, call, end](Result<TxState> recorded) {
    AfterEnd(*call, end, std::move(recorded));
    Complete(call);
  });
}

void TransactionProducer::Impl::Complete(const std::shared_ptr<AsyncCall>& call) {
  if (call->on_done) call->on_done();
  call->promise.set_value(std::move(call->result));
  if (call->in_window) LeaveWindow();
  call->pass.reset();  // the last use of the producer
}

bool TransactionProducer::Impl::EnterWindow() {
  std::unique_lock<std::mutex> lock(window_mu_);
  window_cv_.wait(lock,
                  [this] { return window_closed_ || in_window_ < options_.transaction_window; });
  if (window_closed_) return false;
  ++in_window_;
  return true;
}

void TransactionProducer::Impl::LeaveWindow() {
  std::lock_guard<std::mutex> lock(window_mu_);
  --in_window_;
  window_cv_.notify_one();
}

Status TransactionProducer::Impl::FlushEnds(std::chrono::milliseconds timeout) {
  producer::CallGate::Pass pass(gate_);
  if (!pass) return NotRunning();
  return FlushAll(timeout);
}

Status TransactionProducer::Impl::FlushAll(std::chrono::milliseconds timeout) {
  // One deadline for all: each group's ends wait on their own broker.
  const SteadyTime deadline = SteadyClock::now() + timeout;
  Status first;
  for (producer::TxClient* client : groups_->All()) {
    const auto left = std::max(
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - SteadyClock::now()),
        std::chrono::milliseconds(1));
    if (Status s = client->ends().Flush(left); !s.ok() && first.ok()) first = s;
  }
  return first;
}

}  // namespace txmq
