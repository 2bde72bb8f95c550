// TransactionProducer's implementation, shared by transaction_producer.cc
// (start, shutdown, the synchronous path) and transaction_async.cc (the
// windowed path). A transaction goes through the same steps on both paths:
// Prepare, the half, RunLocal, AfterLocal (which queues a background end or
// asks for a confirmed one), AfterEnd.
//
// Threads: the I/O thread of each group's connection (tx_groups.h) runs
// the completions of halves and ends; `locals_` runs the local transactions of asynchronous calls;
// a synchronous call runs everything on its caller's thread.
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "producer/src/call_gate.h"
#include "producer/src/group_router.h"
#include "producer/src/store_checker.h"
#include "producer/src/task_threads.h"
#include "producer/src/tx_client.h"
#include "producer/src/tx_groups.h"
#include "txmq/transaction_producer.h"

namespace txmq {

class TransactionProducer::Impl {
 public:
  // Runs the local transaction; returns its decision, and for a store the
  // local commit's status in *local_status.
  using LocalFn = std::function<TxState(const std::vector<Message>&, Status* local_status)>;

  Impl(const ProducerOptions& options, TransactionChecker checker, LocalStore* store)
      : options_(options), checker_(std::move(checker)), store_(store) {}

  Status Start();
  void Shutdown();

  TransactionResult SendWithChecker(
      std::vector<Message> messages,
      const std::function<TxState(const std::vector<Message>&)>& local);
  TransactionResult SendWithStore(
      std::vector<Message> messages,
      const std::function<TxState(LocalTxn&, const std::vector<Message>&)>& local);
  std::future<TransactionResult> AsyncWithChecker(
      std::vector<Message> messages, std::function<TxState(const std::vector<Message>&)> local);
  std::future<TransactionResult> AsyncWithStore(
      std::vector<Message> messages,
      std::function<TxState(LocalTxn&, const std::vector<Message>&)> local);
  Status FlushEnds(std::chrono::milliseconds timeout);
  Result<SendResult> Send(Message message);
  // Waits for every group's background ends, `timeout` in all.
  Status FlushAll(std::chrono::milliseconds timeout);

  const std::string& client_id() const { return client_id_; }

 private:
  enum class State { kNew, kRunning, kShutDown };

  // One transaction on its way.
  struct Call {
    std::string tx_id{};
    std::vector<Message> messages{};
    // The group's client that takes its half and its end (set by Prepare).
    producer::TxClient* client = nullptr;
    TransactionResult result{};
    Status local_status{};  // the local commit failed (store-backed)
  };
  // An asynchronous one: owned by the steps still to come.
  struct AsyncCall : Call {
    std::unique_ptr<producer::CallGate::Pass> pass;  // released last
    LocalFn run_local;
    std::function<void()> on_done;  // store-backed: the local transaction is over
    bool in_window = false;
    std::promise<TransactionResult> promise;
  };

  // Stamps the reserved properties and prepares the messages; on error the
  // call sent nothing.
  Status Prepare(Call& call);
  // The half was not stored: result.status says so (the local transaction
  // never runs).
  void HalfFailed(Call& call, const Status& s);
  // Runs the local transaction (an exception counts as ROLLBACK).
  void RunLocal(Call& call, const LocalFn& run_local);
  // True when a confirmed end `*end` is to be sent now; otherwise the call
  // is complete (undecided, or the end queued in the background).
  bool AfterLocal(Call& call, TxState* end);
  void AfterEnd(Call& call, TxState sent, Result<TxState> recorded);

  // The synchronous path.
  TransactionResult Run(Call call, const LocalFn& run_local);
  // The asynchronous one (transaction_async.cc).
  void RunAsync(std::shared_ptr<AsyncCall> call);
  void LocalStep(std::shared_ptr<AsyncCall> call);
  void Complete(const std::shared_ptr<AsyncCall>& call);
  // Waits for room in the window; false once Shutdown began.
  bool EnterWindow();
  void LeaveWindow();

  Status NotRunning();
  // A result for a call that sent nothing.
  static TransactionResult Failed(Status s) {
    TransactionResult r;
    r.status = std::move(s);
    return r;
  }
  // A failure caused by Shutdown closing the connection says so.
  Status Explain(Status s) const;
  bool background() const { return options_.end_mode == TransactionEndMode::kBackground; }

  const ProducerOptions options_;
  const TransactionChecker checker_;
  LocalStore* const store_;  // store-backed only; outlives the producer

  std::mutex shutdown_mu_;
  std::mutex mu_;
  State state_ = State::kNew;  // guarded by mu_
  // Calls pass it while they use groups_ (and its clients), locals_ and
  // store_txs_, which Start sets and Shutdown frees once the gate is closed
  // and empty. An asynchronous call holds its pass until its future is set.
  producer::CallGate gate_;
  std::unique_ptr<producer::TxGroups> groups_;
  std::shared_ptr<producer::GroupRouter> router_;  // plain sends (Send); set with groups_
  std::unique_ptr<producer::TaskThreads> locals_;
  std::unique_ptr<producer::StoreTransactions> store_txs_;  // store-backed only
  std::string client_id_;                                   // set by Start, then constant
  std::atomic<bool> closing_{false};  // Shutdown is failing the calls in flight

  std::mutex window_mu_;
  std::condition_variable window_cv_;
  int in_window_ = 0;           // guarded by window_mu_
  bool window_closed_ = false;  // guarded by window_mu_: Shutdown began
};

}  // namespace txmq
