// The web console's HTTP side: the page (console_assets.h) at /, its API
// (console_api.h) under /api/, and the checks every such request passes
// before anything else looks at it:
//
//   Host     an IP address or "localhost" (any port), else 403: a page
//            whose DNS name was rebound to 127.0.0.1 (DNS rebinding) would
//            otherwise be same-origin with the console.
//   token    /api/ needs "Authorization: Bearer TOKEN" (console_token.h):
//            none is 401, a wrong one 403.
//   POST     actions only by POST, with Content-Type application/json and,
//            when the browser sends an Origin, the console's own: a form
//            or a script on another site can send neither the header nor
//            the type without a CORS preflight, which is never allowed
//            (no Access-Control-* header is ever sent).
//
// Every answer forbids framing, sniffing and caching, and the page's
// Content-Security-Policy allows only its own script and style: what the
// page shows (ids, keys, bodies, reasons) comes from producers and
// operators, and is put in the page as text, never as markup.
#pragma once

#include <functional>
#include <memory>

#include "broker/src/http/console_api.h"
#include "broker/src/http/console_token.h"

namespace httplib {
class Server;
}

namespace txmq::broker::http {

struct ConsoleState {
  std::shared_ptr<ConsoleApi> api;
  ConsoleToken token;
};
// The console's state once the broker serves; null before.
using ConsoleSource = std::function<std::shared_ptr<const ConsoleState>()>;

void RouteConsole(httplib::Server& server, ConsoleSource source);

// Whether a Host header names this machine by address or as localhost.
bool IsAddressHost(const std::string& host_header);

}  // namespace txmq::broker::http
