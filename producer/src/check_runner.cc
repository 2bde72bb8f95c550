#include "producer/src/check_runner.h"

#include "protocol/src/log.h"
#include "protocol/src/util.h"

namespace txmq::producer {

namespace {
// A checker that hangs makes checks queue up; past this many the oldest
// ones are dropped (the broker asks again, and counts the silence).
constexpr size_t kMaxQueued = 10'000;
}  // namespace

CheckRunner::CheckRunner(int threads, CheckFn check, ReplyFn reply)
    : check_(std::move(check)), reply_(std::move(reply)) {
  for (int i = 0; i < std::max(threads, 1); ++i) {
    threads_.emplace_back([this] {
      SetThreadName("txmq-checker");
      Work();
    });
  }
}

CheckRunner::~CheckRunner() { Stop(); }

void CheckRunner::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return;
    stopping_ = true;
    queue_.clear();
    queued_.clear();
  }
  cv_.notify_all();
  for (auto& t : threads_) t.join();
}

void CheckRunner::Submit(uint64_t request_id, CheckRequest request) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return;
    // The broker asks again when a checker is slow; one queued check per
    // transaction is enough (answering the latest request, which the
    // checker sees with its count).
    if (auto it = queued_.find(request.transaction_id); it != queued_.end()) {
      it->second = Latest{request_id, request.check_count};
      return;
    }
    queued_[request.transaction_id] = Latest{request_id, request.check_count};
    if (queue_.size() >= kMaxQueued) {
      Logger("producer")
          ->warn(
              "{} transaction checks are waiting for the checker (is it stuck?); "
              "dropping the oldest",
              queue_.size());
      queued_.erase(queue_.front().request.transaction_id);
      queue_.pop_front();
    }
    queue_.push_back(Job{request_id, std::move(request)});
  }
  cv_.notify_one();
}

void CheckRunner::Work() {
  while (true) {
    Job job;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (stopping_) return;
      job = std::move(queue_.front());
      queue_.pop_front();
      auto latest = queued_.find(job.request.transaction_id);
      job.request_id = latest->second.request_id;
      job.request.check_count = latest->second.check_count;
      queued_.erase(latest);
    }
    reply_(job.request_id, job.request.transaction_id, Run(job.request));
  }
}

CheckAnswer CheckRunner::Run(const CheckRequest& request) {
  try {
    CheckAnswer answer = check_(request);
    if (answer.state == TxState::kCommit || answer.state == TxState::kRollback ||
        answer.state == TxState::kUnknown) {
      return answer;
    }
    return {TxState::kUnknown, "checker returned " +
                                   std::to_string(static_cast<int>(answer.state)) +
                                   ", which is not COMMIT, ROLLBACK or UNKNOWN"};
  } catch (const std::exception& e) {
    Logger("producer")
        ->warn("checker threw for transaction {}: {}", request.transaction_id, e.what());
    return {TxState::kUnknown, std::string("checker threw: ") + e.what()};
  } catch (...) {
    Logger("producer")->warn("checker threw for transaction {}", request.transaction_id);
    return {TxState::kUnknown, "checker threw a non-standard exception"};
  }
}

}  // namespace txmq::producer
