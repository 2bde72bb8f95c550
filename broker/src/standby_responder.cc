#include "broker/src/standby_responder.h"

#include <zmq.hpp>

#include "broker/src/auth/security.h"
#include "protocol/src/codec.h"
#include "protocol/src/log.h"

namespace txmq::broker {

struct StandbyResponder::Impl {
  std::string who;
  std::function<std::string()> leader;
  std::function<wire::ClusterStatusView()> status;
  zmq::context_t context{1};
  // Before the router: its ZAP handler binds in `context` first.
  std::unique_ptr<auth::Security> security;
  zmq::socket_t router;
  std::atomic<bool> stop{false};
  std::thread thread;

  // The socket first, then the ZAP handler (no handshake may find it
  // gone), then the context, which waits for every socket of it.
  void Close() {
    router.close();
    security.reset();
    context.close();
  }

  void Loop() {
    const wire::DecodeLimits limits;
    while (!stop) {
      zmq::pollitem_t item{router.handle(), 0, ZMQ_POLLIN, 0};
      try {
        zmq::poll(&item, 1, std::chrono::milliseconds(100));
        if (!(item.revents & ZMQ_POLLIN)) continue;
        zmq::message_t id, payload;
        if (!router.recv(id, zmq::recv_flags::dontwait) || !id.more()) continue;
        (void)router.recv(payload, zmq::recv_flags::dontwait);
        bool more = payload.more();
        while (more) {  // a request is one frame; drop the rest
          zmq::message_t junk;
          (void)router.recv(junk, zmq::recv_flags::dontwait);
          more = junk.more();
        }
        auto frame = wire::DecodeFrame(std::move(payload), limits);
        const uint64_t request_id = frame.ok() ? frame->envelope().getRequestId() : 0;
        wire::OutFrame reply(request_id);
        if (frame.ok() && frame->envelope().which() == wire::Envelope::CLUSTER_STATUS) {
          // Read-only and about this node: answered here, so an operator
          // sees what a follower thinks even when no leader can be reached.
          wire::FillClusterStatus(status(), reply.envelope().initClusterStatusOk());
        } else {
          const std::string leader_url = leader();
          wire::SetNotLeader(reply.envelope(), NotLeader(who, leader_url).message(), leader_url);
        }
        (void)router.send(id, zmq::send_flags::sndmore | zmq::send_flags::dontwait);
        (void)router.send(reply.Encode(), zmq::send_flags::dontwait);
      } catch (const zmq::error_t& e) {
        if (e.num() != EINTR && e.num() != EHOSTUNREACH) {
          Logger("cluster")->warn("standby answer failed: {}", e.what());
        }
      } catch (const kj::Exception&) {
        // A malformed request: nothing to answer it with.
      }
    }
  }
};

Status StandbyResponder::NotLeader(const std::string& who, const std::string& leader_url) {
  return Status(StatusCode::kNotLeader,
                who + " does not lead its group; " +
                    (leader_url.empty() ? std::string("no leader is known yet")
                                        : "the leader is " + leader_url) +
                    " (retry there)");
}

Result<std::unique_ptr<StandbyResponder>> StandbyResponder::Start(
    std::string endpoint, std::string who, std::function<std::string()> leader,
    std::function<wire::ClusterStatusView()> status, const BrokerOptions& security) {
  auto impl = std::make_unique<Impl>();
  impl->who = std::move(who);
  impl->leader = std::move(leader);
  impl->status = std::move(status);
  // As the broker does (Server::Init): the ZAP handler is bound before the
  // socket exists, the socket is a CURVE server before it binds, and an
  // unknown key is proven refused before anyone is answered.
  auto opened = auth::Security::Open(security, impl->context);
  if (!opened.ok()) return opened.status();
  impl->security = std::move(opened.value());
  try {
    impl->router = zmq::socket_t(impl->context, zmq::socket_type::router);
    if (impl->security) {
      if (Status s = impl->security->ConfigureRouter(impl->router); !s.ok()) return s;
      // The broker's own bounds on what an unauthenticated peer may cost.
      impl->router.set(zmq::sockopt::handshake_ivl, 5000);
      impl->router.set(zmq::sockopt::maxmsgsize,
                       static_cast<int64_t>(wire::MaxFrameBytes(security.max_message_bytes)));
    }
    impl->router.set(zmq::sockopt::linger, 0);
    impl->router.set(zmq::sockopt::sndhwm, 1000);
    // A client keeps its routing id on every socket, and one that tries the
    // group's URLs in turn comes back here a moment after it left: without
    // handover the new connection's requests are ignored for as long as the
    // old one is not yet torn down, and its hello goes unanswered.
    impl->router.set(zmq::sockopt::router_handover, 1);
    impl->router.bind(endpoint);
  } catch (const zmq::error_t& e) {
    impl->Close();
    return Status::Unavailable("cannot listen on '" + endpoint + "': " + e.what());
  }
  if (impl->security) {
    const std::string bound = impl->router.get(zmq::sockopt::last_endpoint);
    if (Status s = impl->security->Prove(impl->context, bound); !s.ok()) {
      impl->Close();
      return s;
    }
  }
  Impl* raw = impl.get();
  impl->thread = std::thread([raw] { raw->Loop(); });
  return std::unique_ptr<StandbyResponder>(new StandbyResponder(std::move(impl)));
}

StandbyResponder::StandbyResponder(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

StandbyResponder::~StandbyResponder() {
  impl_->stop = true;
  impl_->thread.join();
  impl_->Close();
}

bool StandbyResponder::curve() const { return impl_->security != nullptr; }

Status StandbyResponder::ReloadAcl() {
  return impl_->security ? impl_->security->ReloadAcl() : Status::OK();
}

}  // namespace txmq::broker
