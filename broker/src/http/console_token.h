// The secret that lets an HTTP client act through the web console (and
// read its API): either the operator's file (txmqd --http-token-file) or a
// random one txmqd writes at each start to <data-dir>/http-token, mode
// 0600, so that only the broker's user (and root) can read it.
//
// Why a token and not "loopback is enough": every local user, and every
// web page open in an operator's browser, reaches a loopback port. A page
// cannot read the token, cannot set an Authorization header on a request
// to another origin without a CORS preflight (which the console never
// allows), and cannot read answers from another origin; DNS rebinding is
// turned away by the Host check (console_routes.cc).
#pragma once

#include <string>
#include <string_view>

#include "txmq/status.h"

namespace txmq::broker::http {

struct ConsoleToken {
  std::string secret;
  std::string path;  // where it is, to tell the operator
};

// The token in `path` (surrounding white space ignored). INVALID_ARGUMENT
// naming --http-token-file when it cannot be read or is shorter than
// kMinTokenBytes.
Result<ConsoleToken> ReadConsoleToken(const std::string& path);
inline constexpr size_t kMinTokenBytes = 16;

// A new random token (32 bytes, hex), written to `data_dir`/http-token
// with mode 0600 (replacing an older one).
Result<ConsoleToken> WriteNewConsoleToken(const std::string& data_dir);

// Compares in time independent of where the first difference is.
bool TokensEqual(std::string_view a, std::string_view b);

}  // namespace txmq::broker::http
