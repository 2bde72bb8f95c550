#include "broker/src/principal_connections.h"

#include <algorithm>

namespace txmq::broker {

PrincipalConnections::PrincipalConnections(size_t limit, PeerFn peer_of)
    : limit_(limit), peer_of_(std::move(peer_of)) {}

Status PrincipalConnections::Claim(int fd, const std::string& principal) {
  if (fd < 0) return Status::OK();  // no descriptor to count by (not TCP)
  std::lock_guard<std::mutex> lock(mu_);
  const std::string peer = peer_of_(fd);
  // Closed before its request was read: nothing to count, and a claim with
  // no peer could never be told apart from the next one on the number.
  if (peer.empty()) return Status::OK();
  if (auto it = claims_.find(fd); it != claims_.end()) {
    if (it->second.peer == peer && it->second.principal == principal) return Status::OK();
    Release(it);  // the descriptor holds another connection now
  }
  auto open = [&] {
    auto it = open_.find(principal);
    return it == open_.end() ? size_t{0} : it->second;
  };
  if (limit_ != 0 && open() >= limit_) {
    const auto now = std::chrono::steady_clock::now();
    if (now - pruned_at_ >= kPruneEvery) {
      pruned_at_ = now;
      PruneLocked(&principal);
    }
  }
  if (limit_ != 0 && open() >= limit_) {
    return Status::ResourceExhausted(
        "principal '" + principal + "' has " + std::to_string(open()) +
        " connections open; the limit is " + std::to_string(limit_) +
        " (--max-connections-per-principal): close some, or share them between threads");
  }
  claims_[fd] = {principal, peer};
  ++open_[principal];
  return Status::OK();
}

void PrincipalConnections::Closed(int fd) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = claims_.find(fd);
  // Still the claimed connection: the event is about an older one.
  if (it == claims_.end() || peer_of_(fd) == it->second.peer) return;
  Release(it);
}

void PrincipalConnections::Prune() {
  std::lock_guard<std::mutex> lock(mu_);
  PruneLocked(nullptr);
}

void PrincipalConnections::PruneLocked(const std::string* only_principal) {
  for (auto it = claims_.begin(); it != claims_.end();) {
    auto next = std::next(it);
    if ((only_principal == nullptr || it->second.principal == *only_principal) &&
        peer_of_(it->first) != it->second.peer) {
      Release(it);
    }
    it = next;
  }
}

void PrincipalConnections::Release(std::map<int, Claimed>::iterator it) {
  auto count = open_.find(it->second.principal);
  if (count != open_.end() && --count->second == 0) open_.erase(count);
  claims_.erase(it);
  releases_.fetch_add(1, std::memory_order_release);
}

size_t PrincipalConnections::Of(const std::string& principal) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = open_.find(principal);
  return it == open_.end() ? 0 : it->second;
}

size_t PrincipalConnections::Largest() const {
  std::lock_guard<std::mutex> lock(mu_);
  size_t most = 0;
  for (const auto& [principal, n] : open_) most = std::max(most, n);
  return most;
}

}  // namespace txmq::broker
