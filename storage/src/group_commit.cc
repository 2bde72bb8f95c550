#include "storage/src/group_commit.h"

#include <chrono>

#include "protocol/src/util.h"
#include "storage/src/db.h"

namespace txmq::storage {

GroupCommitter::GroupCommitter(leveldb::DB* db, bool sync, EventFd* done)
    : db_(db), sync_(sync), done_(done), thread_([this] { Run(); }) {}

GroupCommitter::~GroupCommitter() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void GroupCommitter::Submit(std::unique_ptr<CommitRound> round) {
  busy_ = true;
  {
    std::lock_guard<std::mutex> lock(mu_);
    in_flight_ = std::move(round);
  }
  cv_.notify_all();
}

std::unique_ptr<CommitRound> GroupCommitter::TakeFinished() {
  std::lock_guard<std::mutex> lock(mu_);
  if (finished_) busy_ = false;
  return std::move(finished_);
}

std::unique_ptr<CommitRound> GroupCommitter::WaitFinished() {
  std::unique_lock<std::mutex> lock(mu_);
  if (!busy_) return nullptr;
  cv_.wait(lock, [this] { return finished_ != nullptr; });
  busy_ = false;
  return std::move(finished_);
}

void GroupCommitter::WriteInline(CommitRound& round) { Write(round); }

void GroupCommitter::Write(CommitRound& round) {
  leveldb::WriteOptions options;
  options.sync = sync_;
  auto start = std::chrono::steady_clock::now();
  round.status = FromLevelDb(db_->Write(options, &round.batch), "writing a batch");
  auto micros = std::chrono::duration_cast<std::chrono::microseconds>(
                    std::chrono::steady_clock::now() - start)
                    .count();
  std::lock_guard<std::mutex> lock(mu_);
  stats_.rounds++;
  stats_.completions += round.on_durable.size();
  stats_.bytes += round.batch.ApproximateSize();
  stats_.write_micros += static_cast<uint64_t>(micros);
}

CommitStats GroupCommitter::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

void GroupCommitter::Run() {
  SetThreadName("txmq-storage");
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    // Stop only when nothing is in flight: a submitted round is always written.
    cv_.wait(lock, [this] { return in_flight_ != nullptr || stopping_; });
    if (!in_flight_) return;
    std::unique_ptr<CommitRound> round = std::move(in_flight_);
    lock.unlock();
    Write(*round);
    lock.lock();
    finished_ = std::move(round);
    cv_.notify_all();
    done_->Notify();
  }
}

}  // namespace txmq::storage
