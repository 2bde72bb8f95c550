// Runs transaction checks the broker asks for, on a small pool of threads,
// so a slow or hanging checker never blocks the connection's I/O thread.
//
// Threads: `threads` workers started by the constructor own nothing but
// the check they run. Shared under mu_: queue_, stopping_.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "txmq/transaction_producer.h"

namespace txmq::producer {

struct CheckAnswer {
  TxState state = TxState::kUnknown;
  std::string error;  // why the checker could not say
};

class CheckRunner {
 public:
  // Answers a check; an UNKNOWN answer may say why in `error`.
  using CheckFn = std::function<CheckAnswer(const CheckRequest&)>;
  using ReplyFn = std::function<void(uint64_t request_id, const std::string& tx_id, CheckAnswer)>;

  CheckRunner(int threads, CheckFn check, ReplyFn reply);
  // Stop(): waits for the checks that are running; drops queued ones (the
  // broker asks again).
  ~CheckRunner();
  CheckRunner(const CheckRunner&) = delete;
  CheckRunner& operator=(const CheckRunner&) = delete;

  // Never blocks. Called on the I/O thread.
  void Submit(uint64_t request_id, CheckRequest request);
  void Stop();

 private:
  struct Job {
    uint64_t request_id;
    CheckRequest request;
  };
  void Work();
  CheckAnswer Run(const CheckRequest& request);

  CheckFn check_;
  ReplyFn reply_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Job> queue_;  // guarded by mu_
  // Transactions with a check in queue_: a repeated check of one of them
  // replaces the queued one instead of queueing again.
  struct Latest {
    uint64_t request_id;
    uint32_t check_count;
  };
  std::unordered_map<std::string, Latest> queued_;  // guarded by mu_; by tx id
  bool stopping_ = false;                           // guarded by mu_
  std::vector<std::thread> threads_;
};

}  // namespace txmq::producer
