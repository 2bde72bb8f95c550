#include "broker/src/operator_mailbox.h"

namespace txmq::broker {

Result<std::string> OperatorMailbox::Call(Request request, std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  if (closed_) return close_reason_;
  const uint64_t id = request.request_id;
  if (asked_.count(id) != 0) {
    return Status::InvalidArgument("request id " + std::to_string(id) + " is in use");
  }
  if (waiting_.size() >= kMaxWaiting) {
    return Status::Overloaded(std::to_string(kMaxWaiting) +
                              " operator requests already wait for the broker's core thread");
  }
  asked_[id];
  waiting_.push_back(std::move(request));
  wake_.Notify();
  answered_.wait_for(lock, timeout, [&] { return closed_ || asked_[id].has_value(); });
  auto node = asked_.extract(id);
  if (node.mapped()) return std::move(*node.mapped());
  // Not taken yet: the core must not serve what nobody waits for.
  std::erase_if(waiting_, [id](const Request& r) { return r.request_id == id; });
  if (closed_) return close_reason_;
  return Status::Unavailable("the broker's core thread did not answer within " +
                             std::to_string(timeout.count()) + " ms");
}

std::vector<OperatorMailbox::Request> OperatorMailbox::Take() {
  wake_.Drain();
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<Request> out(std::make_move_iterator(waiting_.begin()),
                           std::make_move_iterator(waiting_.end()));
  waiting_.clear();
  return out;
}

void OperatorMailbox::Answer(uint64_t request_id, std::string reply) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = asked_.find(request_id);
  if (it == asked_.end()) return;  // its asker gave up
  it->second = std::move(reply);
  answered_.notify_all();
}

void OperatorMailbox::Close(const Status& why) {
  std::lock_guard<std::mutex> lock(mu_);
  if (closed_) return;
  closed_ = true;
  close_reason_ = Status::Unavailable(why.ok() ? "the broker stopped"
                                               : "the broker stopped: " + why.ToString());
  waiting_.clear();
  answered_.notify_all();
}

}  // namespace txmq::broker
