// txmqd's early look at its --listen port: whether something else already
// holds it, found before the data directory is opened and checked (which
// can take minutes on a large log), not after.
//
// Thread safety: a pure function (it opens and closes one socket).
#pragma once

#include <string>

namespace txmq::broker {

// For tcp://ADDRESS:PORT with an IP address (or *) and a port number: binds
// a socket there and closes it. Returns the bind's errno (EADDRINUSE,
// EACCES, EADDRNOTAVAIL...), or 0 when it worked or cannot be told this way
// (a host name, an interface name, a free port, ipc://). The real bind
// still decides.
int ListenPortProblem(const std::string& endpoint);

}  // namespace txmq::broker
