#include "broker/src/snapshot_mailbox.h"

namespace txmq::broker {

Result<std::shared_ptr<const MetricsSnapshot>> SnapshotMailbox::Request(
    std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  if (closed_) return close_reason_;
  const uint64_t ticket = ++asked_;
  wake_.Notify();
  published_.wait_for(lock, timeout, [&] { return closed_ || answered_ >= ticket; });
  if (answered_ >= ticket) return latest_;
  if (closed_) return close_reason_;
  return Status::Unavailable("the broker's core thread did not answer within " +
                             std::to_string(timeout.count()) + " ms");
}

uint64_t SnapshotMailbox::TakeRequest() {
  wake_.Drain();
  std::lock_guard<std::mutex> lock(mu_);
  return asked_ > answered_ ? asked_ : 0;
}

void SnapshotMailbox::Publish(std::shared_ptr<const MetricsSnapshot> snapshot, uint64_t ticket) {
  std::lock_guard<std::mutex> lock(mu_);
  latest_ = std::move(snapshot);
  answered_ = std::max(answered_, ticket);
  published_.notify_all();
}

void SnapshotMailbox::Close(const Status& why) {
  std::lock_guard<std::mutex> lock(mu_);
  if (closed_) return;
  closed_ = true;
  close_reason_ = Status::Unavailable(why.ok() ? "the broker stopped"
                                               : "the broker stopped: " + why.ToString());
  published_.notify_all();
}

}  // namespace txmq::broker
