// The service manager's readiness protocol (systemd's sd_notify, spoken
// directly: one datagram to $NOTIFY_SOCKET, so txmqd needs no libsystemd).
// With Type=notify, systemd counts txmqd as started only once recovery is
// done and the socket is bound, and `systemctl start` waits for that.
// Without $NOTIFY_SOCKET every call does nothing.
#pragma once

#include <string>

#include "txmq/status.h"

namespace txmq::broker {

// Sends `state` ("READY=1\nSTATUS=...", "STOPPING=1") to the socket named
// by $NOTIFY_SOCKET (a path, or '@' for the abstract namespace). OK when the
// variable is unset.
Status NotifyServiceManager(const std::string& state);

}  // namespace txmq::broker
