#include "broker/src/http/console_routes.h"

#include <arpa/inet.h>
#include <httplib.h>

#include "broker/src/http/console_assets.h"

namespace txmq::broker::http {

namespace {

constexpr const char* kJson = "application/json; charset=utf-8";

void SetGuardHeaders(httplib::Response& res) {
  res.set_header("X-Content-Type-Options", "nosniff");
  res.set_header("X-Frame-Options", "DENY");
  res.set_header("Referrer-Policy", "no-referrer");
  res.set_header("Cache-Control", "no-store");
  res.set_header("Content-Security-Policy",
                 "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
                 "img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'");
}

void Send(httplib::Response& res, const ApiReply& reply) {
  res.status = reply.status;
  // Ids, keys and bodies are whatever producers sent: never refuse to
  // answer over a byte that is not UTF-8.
  res.set_content(reply.body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n",
                  kJson);
}

std::string Peer(const httplib::Request& req) {
  return req.remote_addr + ":" + std::to_string(req.remote_port);
}

// The state once the broker serves and the request passed the checks in
// the header comment; else null, with the refusal in `res`.
std::shared_ptr<const ConsoleState> Admit(const ConsoleSource& source, const httplib::Request& req,
                                          httplib::Response& res, bool api) {
  SetGuardHeaders(res);
  const std::string host = req.get_header_value("Host");
  if (!IsAddressHost(host)) {
    Send(res, ErrorReply(403, "Host '" + host +
                                  "' is not an address of this machine: the console answers only "
                                  "requests addressed to an IP address or localhost (a DNS name "
                                  "could be rebound to it by another site)"));
    return nullptr;
  }
  if (!api) return std::make_shared<const ConsoleState>();
  auto state = source();
  if (!state) {
    Send(res, ErrorReply(503, "starting: the broker is recovering its data directory"));
    return nullptr;
  }
  const std::string auth = req.get_header_value("Authorization");
  constexpr std::string_view kBearer = "Bearer ";
  if (auth.empty()) {
    res.set_header("WWW-Authenticate", "Bearer realm=\"txmq\"");
    Send(res, ErrorReply(401, "no token: send \"Authorization: Bearer TOKEN\" with the token in " +
                                  state->token.path));
    return nullptr;
  }
  if (auth.compare(0, kBearer.size(), kBearer) != 0 ||
      !TokensEqual(std::string_view(auth).substr(kBearer.size()), state->token.secret)) {
    Send(res, ErrorReply(403, "the token is wrong (txmqd reads it from " + state->token.path +
                                  "; a new one is written at each start unless "
                                  "--http-token-file is given)"));
    return nullptr;
  }
  if (req.method == "POST") {
    const std::string type = req.get_header_value("Content-Type");
    if (type.rfind("application/json", 0) != 0) {
      Send(res, ErrorReply(
                    415, "Content-Type '" + type + "': an action's body must be application/json"));
      return nullptr;
    }
    const std::string origin = req.get_header_value("Origin");
    if (!origin.empty() && origin != "http://" + host) {
      Send(res, ErrorReply(403, "Origin '" + origin + "' is not this console (http://" + host +
                                    "): actions come only from the console's own page"));
      return nullptr;
    }
  }
  return state;
}

std::string Match(const httplib::Request& req, size_t i) {
  return i < req.matches.size() ? req.matches[i].str() : "";
}

}  // namespace

bool IsAddressHost(const std::string& host_header) {
  std::string host = host_header;
  if (!host.empty() && host.front() == '[') {
    const size_t close = host.find(']');
    if (close == std::string::npos) return false;
    in6_addr v6;
    return inet_pton(AF_INET6, host.substr(1, close - 1).c_str(), &v6) == 1;
  }
  if (const size_t colon = host.find(':'); colon != std::string::npos) host.resize(colon);
  in_addr v4;
  return host == "localhost" || inet_pton(AF_INET, host.c_str(), &v4) == 1;
}

void RouteConsole(httplib::Server& server, ConsoleSource source) {
  for (const ConsoleAsset& asset : ConsoleAssets()) {
    server.Get(std::string(asset.path),
               [source, &asset](const httplib::Request& req, httplib::Response& res) {
                 if (!Admit(source, req, res, false)) return;
                 res.set_content(std::string(asset.body), std::string(asset.content_type));
               });
  }
  // Each route: admitted first, then one call of the API.
  auto route = [&server, source](bool post, const std::string& pattern, auto call) {
    auto handler = [source, call](const httplib::Request& req, httplib::Response& res) {
      auto state = Admit(source, req, res, true);
      if (state) Send(res, call(*state->api, req));
    };
    if (post) {
      server.Post(pattern, handler);
    } else {
      server.Get(pattern, handler);
    }
  };
  route(false, "/api/transactions", [](ConsoleApi& api, const httplib::Request& req) {
    return api.ListTransactions(req.params, Peer(req));
  });
  // A transaction id may hold any printable character, '/' too (the path
  // arrives decoded): the action is the last segment, the id all before.
  route(false, R"(/api/transactions/(.+))", [](ConsoleApi& api, const httplib::Request& req) {
    return api.ShowTransaction(Match(req, 1), Peer(req));
  });
  route(true, R"(/api/transactions/(.+)/([^/]+))",
        [](ConsoleApi& api, const httplib::Request& req) {
          return api.ActOnTransaction(Match(req, 1), Match(req, 2), req.body, Peer(req));
        });
  route(false, "/api/topics",
        [](ConsoleApi& api, const httplib::Request& req) { return api.Topics(Peer(req)); });
  route(false, "/api/groups",
        [](ConsoleApi& api, const httplib::Request& req) { return api.Groups(Peer(req)); });
  route(false, R"(/api/dlq/([^/]+))", [](ConsoleApi& api, const httplib::Request& req) {
    return api.DeadLetters(Match(req, 1), req.params, Peer(req));
  });
  route(true, R"(/api/dlq/([^/]+)/resend)", [](ConsoleApi& api, const httplib::Request& req) {
    return api.Resend(Match(req, 1), req.body, Peer(req));
  });
  // Anything else under /api/: a JSON 404 that names it (after the checks,
  // so the API's shape is not open to whoever asks).
  for (bool post : {false, true}) {
    route(post, "/api/.*", [](ConsoleApi&, const httplib::Request& req) {
      return ErrorReply(404, req.method + " " + req.path + " is not part of the console's API");
    });
  }
}

}  // namespace txmq::broker::http
