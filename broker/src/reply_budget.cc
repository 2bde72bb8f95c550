#include "broker/src/reply_budget.h"

#include <algorithm>

namespace txmq::broker {

namespace {

// "33554432 (32 MiB)"
std::string Bytes(uint64_t bytes) {
  return std::to_string(bytes) + " (" + std::to_string(bytes >> 20) + " MiB)";
}

}  // namespace

ReplyTicket::ReplyTicket(std::shared_ptr<QueuedBytes> client, std::shared_ptr<QueuedBytes> total,
                         uint64_t bytes)
    : client_(std::move(client)), total_(std::move(total)), bytes_(bytes) {
  client_->bytes.fetch_add(bytes_, std::memory_order_relaxed);
  total_->bytes.fetch_add(bytes_, std::memory_order_relaxed);
}

ReplyTicket::ReplyTicket(ReplyTicket&& other) noexcept
    : client_(std::move(other.client_)),
      total_(std::move(other.total_)),
      bytes_(std::exchange(other.bytes_, 0)) {}

ReplyTicket& ReplyTicket::operator=(ReplyTicket&& other) noexcept {
  if (this != &other) {
    Release();
    client_ = std::move(other.client_);
    total_ = std::move(other.total_);
    bytes_ = std::exchange(other.bytes_, 0);
  }
  return *this;
}

void ReplyTicket::Release() {
  if (client_ == nullptr) return;
  client_->bytes.fetch_sub(bytes_, std::memory_order_relaxed);
  total_->bytes.fetch_sub(bytes_, std::memory_order_relaxed);
  client_.reset();
  total_.reset();
  bytes_ = 0;
}

ReplyBudget::ReplyBudget(uint64_t per_client, uint64_t total)
    : per_client_(per_client), total_limit_(total) {}

Result<ReplyTicket> ReplyBudget::Reserve(const std::string& client, uint64_t bytes, bool is_error,
                                         Over* over, std::string_view label) {
  if (over != nullptr) *over = Over::kNone;
  auto it = clients_.find(client);
  if (it == clients_.end()) {
    it = clients_.emplace(client, std::make_shared<QueuedBytes>()).first;
  }
  const uint64_t slack = is_error ? kErrorSlack : 0;
  const uint64_t mine = it->second->bytes.load(std::memory_order_relaxed);
  const uint64_t all = total_queued();
  if (mine > 0 && mine + bytes > per_client_ + slack) {
    if (over != nullptr) *over = Over::kPerClient;
    return Status::Overloaded(
        "replies to " + (label.empty() ? "client '" + client + "'" : std::string(label)) +
        " are not being read: " + std::to_string(mine) + " bytes wait for it, this reply has " +
        std::to_string(bytes) + "; the limit is " + Bytes(per_client_) +
        " (--max-reply-bytes-per-client)");
  }
  // Slow clients share the total; a client with nothing waiting (one that
  // reads) may also use a reserve of one client's budget beyond it, so a
  // few slow ones cannot starve everybody else.
  const uint64_t reserve = mine == 0 ? per_client_ : 0;
  if (all > 0 && all + bytes > total_limit_ + reserve + slack) {
    if (over != nullptr) *over = Over::kTotal;
    return Status::Overloaded(
        "replies to slow clients fill the broker's budget: " + std::to_string(all) +
        " bytes wait, this reply has " + std::to_string(bytes) + "; the limit is " +
        Bytes(total_limit_) + " (--max-reply-bytes)");
  }
  return ReplyTicket(it->second, total_, bytes);
}

void ReplyBudget::Sweep(size_t budget) {
  auto it = clients_.upper_bound(sweep_after_);
  for (; it != clients_.end() && budget > 0; --budget) {
    // Nobody else holds it: no ticket alive, nothing queued.
    if (it->second.use_count() == 1 && it->second->bytes.load() == 0) {
      sweep_after_ = it->first;
      it = clients_.erase(it);
    } else {
      sweep_after_ = it->first;
      ++it;
    }
  }
  if (it == clients_.end()) sweep_after_.clear();
}

uint64_t ReplyBudget::largest_queued() const {
  uint64_t most = 0;
  for (const auto& [client, queued] : clients_) {
    most = std::max<uint64_t>(most, queued->bytes.load(std::memory_order_relaxed));
  }
  return most;
}

uint64_t ReplyBudget::queued_for(const std::string& client) const {
  auto it = clients_.find(client);
  return it == clients_.end() ? 0 : it->second->bytes.load(std::memory_order_relaxed);
}

}  // namespace txmq::broker
