// The start-up proof that CURVE authentication is in force. libzmq admits
// every client key when no ZAP handler answers, and nothing else would
// show it: so before the broker serves, it connects to itself with a fresh
// key that no ACL can name and insists on being refused.
//
// Thread safety: a free function; runs on the thread that starts the broker.
#pragma once

#include <chrono>
#include <string>
#include <zmq.hpp>

#include "txmq/status.h"

namespace txmq::broker::auth {

// OK once a CURVE client with an unknown key was refused by the ZAP handler
// at `endpoint` (the broker's bound address, "tcp://0.0.0.0:7800" is
// reached through loopback). INTERNAL when it was let in; UNAVAILABLE
// when no verdict came within `timeout`.
Status ProveUnknownKeyRefused(zmq::context_t& context, const std::string& endpoint,
                              const std::string& server_public_key,
                              std::chrono::milliseconds timeout);

// Where a client on this machine reaches a socket bound at `endpoint`.
std::string LocalEndpointOf(const std::string& endpoint);

}  // namespace txmq::broker::auth
