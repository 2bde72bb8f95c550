#include "broker/src/cluster/inproc_transport.h"

namespace txmq::cluster {

class InProcNetwork::Endpoint final : public ReplicationTransport {
 public:
  Endpoint(InProcNetwork& network, std::string node) : network_(network), node_(std::move(node)) {}

  using ReplicationTransport::Send;
  Status Send(const std::string& peer, SharedFrame frame) override {
    auto it = network_.endpoints_.find(peer);
    if (it == network_.endpoints_.end()) return Status::Unavailable("no node " + peer);
    if (network_.IsCut(node_, peer)) {
      ++network_.dropped_;
      return Status::OK();  // lost on the way: the sender cannot tell
    }
    it->second->inbox_.push_back({node_, *frame});
    return Status::OK();
  }

  std::optional<TransportFrame> Receive() override {
    if (inbox_.empty()) return std::nullopt;
    TransportFrame f = std::move(inbox_.front());
    inbox_.pop_front();
    return f;
  }

 private:
  InProcNetwork& network_;
  const std::string node_;
  std::deque<TransportFrame> inbox_;
};

InProcNetwork::InProcNetwork() = default;
InProcNetwork::~InProcNetwork() = default;

ReplicationTransport& InProcNetwork::Attach(const std::string& node) {
  auto& slot = endpoints_[node];
  if (!slot) slot = std::make_unique<Endpoint>(*this, node);
  return *slot;
}

void InProcNetwork::Cut(const std::string& a, const std::string& b, bool cut) {
  auto key = std::minmax(a, b);
  if (cut) {
    cut_.emplace(key.first, key.second);
  } else {
    cut_.erase({key.first, key.second});
  }
}

bool InProcNetwork::IsCut(const std::string& a, const std::string& b) const {
  auto key = std::minmax(a, b);
  return cut_.count({key.first, key.second}) > 0;
}

}  // namespace txmq::cluster
