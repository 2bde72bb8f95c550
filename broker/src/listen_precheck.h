// txmqd's early look at its --listen port: whether something else already
// holds it, found before the data directory is opened and checked (which
// can take minutes on a large log), not after.
//
// Thread safety: a pure function (it opens and closes one socket).
#pragma once

#include <string>

namespace txmq::broker {

// For tcp://ADDRESS:PORT with an IP address (or *) and a port number: binds
// a socket there and closes it. Returns why that failed ("address already
// in use"), or "" when it worked or cannot be told this way (a host name,
// an interface name, a free port, ipc://). The real bind still decides.
std::string ListenPortProblem(const std::string& endpoint);

}  // namespace txmq::broker
