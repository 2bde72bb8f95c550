#include "broker/src/auth/security.h"

#include <sys/stat.h>

#include "broker/src/auth/curve_self_test.h"
#include "protocol/src/curve_keys.h"
#include "protocol/src/log.h"

namespace txmq::broker::auth {

bool IsLoopbackEndpoint(const std::string& endpoint) {
  if (endpoint.rfind("ipc://", 0) == 0 || endpoint.rfind("inproc://", 0) == 0) return true;
  if (endpoint.rfind("tcp://", 0) != 0) return false;
  const std::string rest = endpoint.substr(6);
  const size_t colon = rest.rfind(':');
  if (colon == std::string::npos) return false;
  std::string host = rest.substr(0, colon);
  // "tcp://eth0;127.0.0.1:7800" binds through the interface before ';'.
  if (host.find(';') != std::string::npos) return false;
  return IsLoopbackHost(host);
}

bool IsLoopbackHost(const std::string& host) {
  if (host == "localhost" || host == "[::1]" || host == "::1") return true;
  if (host.rfind("127.", 0) != 0) return false;
  int dots = 0;
  for (char c : host) {
    if (c == '.') {
      ++dots;
    } else if (c < '0' || c > '9') {
      return false;
    }
  }
  return dots == 3;
}

Result<std::unique_ptr<Security>> Security::Open(const BrokerOptions& options,
                                                 zmq::context_t& context) {
  if (options.curve_secret_key_file.empty() && options.acl_file.empty()) {
    return std::unique_ptr<Security>();
  }
  if (!curve::Available()) {
    return Status::FailedPrecondition(
        "CURVE was asked for, but this libzmq has no CURVE support (built without libsodium)");
  }
  std::unique_ptr<Security> s(new Security());
  auto secret = curve::ReadKeyFile(options.curve_secret_key_file, "curve secret key file");
  if (!secret.ok()) return secret.status();
  auto pub = curve::PublicKeyOf(*secret);
  if (!pub.ok()) return pub.status();
  s->secret_key_ = *secret;
  s->public_key_ = *pub;
  struct stat st;
  if (::stat(options.curve_secret_key_file.c_str(), &st) == 0 && (st.st_mode & 077) != 0) {
    Logger("auth")->warn(
        "the broker's secret key file {} can be read by other users (mode {:o}); chmod 600 it",
        options.curve_secret_key_file, st.st_mode & 0777);
  }
  auto acl = Acl::Load(options.acl_file);
  if (!acl.ok()) return acl.status();
  Logger("auth")->info("CURVE on: broker public key {}; ACL {} names {} principals", s->public_key_,
                       options.acl_file, (*acl)->size());
  s->acl_ = std::make_unique<AclHolder>(options.acl_file, std::move(acl.value()));
  auto zap = ZapHandler::Start(context, *s->acl_);
  if (!zap.ok()) return zap.status();
  s->zap_ = std::move(zap.value());
  return s;
}

Status Security::ConfigureRouter(zmq::socket_t& router) const {
  try {
    router.set(zmq::sockopt::curve_server, 1);
    router.set(zmq::sockopt::curve_secretkey, secret_key_);
    router.set(zmq::sockopt::zap_domain, kZapDomain);
  } catch (const zmq::error_t& e) {
    return Status::Internal(std::string("cannot make the broker socket a CURVE server: ") +
                            e.what());
  }
  return Status::OK();
}

Status Security::Prove(zmq::context_t& context, const std::string& endpoint) const {
  // The ZAP endpoint of this context is ours (an inproc bind is exclusive),
  // so a 400 can only have come from our handler.
  Status s = ProveUnknownKeyRefused(context, endpoint, public_key_, std::chrono::seconds(10));
  if (!s.ok()) return s;
  Logger("auth")->info("CURVE self-test passed: a client with an unknown key is refused at {}",
                       LocalEndpointOf(endpoint));
  return Status::OK();
}

Status Security::ReloadAcl() {
  if (Status s = acl_->Reload(); !s.ok()) return s;
  Logger("auth")->info(
      "ACL {} reloaded: {} principals; keys it no longer names are refused from "
      "now on",
      acl_->path(), acl_->Get()->size());
  return Status::OK();
}

}  // namespace txmq::broker::auth
