#include "tools/txmqctl/ctl.h"

#include <pwd.h>
#include <unistd.h>

#include <ctime>
#include <iostream>

#include "protocol/src/cluster_status_codec.h"
#include "protocol/src/edit_distance.h"
#include "protocol/src/message_codec.h"
#include "protocol/src/util.h"
#include "txmq/version.h"

namespace txmq::ctl {

std::string DefaultOperator() {
  std::string user;
  for (const char* name : {"USER", "LOGNAME"}) {
    if (const char* v = std::getenv(name); v != nullptr && *v != '\0') {
      user = v;
      break;
    }
  }
  // Under systemd, cron or `docker exec` neither is set: the account is.
  if (user.empty()) {
    const passwd* account = getpwuid(geteuid());
    user = account != nullptr && account->pw_name != nullptr ? account->pw_name
                                                             : "uid " + std::to_string(geteuid());
  }
  char host[256] = {};
  if (gethostname(host, sizeof(host) - 1) != 0 || host[0] == '\0') return user;
  return user + "@" + host;
}

int ExitCodeOf(const Status& status, bool from_broker) {
  switch (status.code()) {
    case StatusCode::kOk:
      return kExitOk;
    case StatusCode::kInvalidArgument:
      return kExitUsage;
    case StatusCode::kNotFound:
      return kExitNotFound;
    case StatusCode::kConflict:
      return kExitConflict;
    case StatusCode::kPermissionDenied:
      return kExitDenied;
    case StatusCode::kUnavailable:
    case StatusCode::kTimeout:
    case StatusCode::kNotLeader:
    case StatusCode::kWrongGroup:
      return from_broker ? kExitUnreachable : kExitFailed;
    default:
      return kExitFailed;
  }
}

namespace {

bool IsPort(const std::string& text) {
  if (text.empty() || text.size() > 5) return false;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
  }
  const int port = std::stoi(text);
  return port >= 1 && port <= 65535;
}

// "HOST:PORT" (HOST may be "[v6]"): true when the port is a port.
bool IsHostPort(const std::string& text) {
  const size_t colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0) return false;
  const std::string host = text.substr(0, colon);
  for (unsigned char c : host) {
    if (c <= 0x20 || c == '/' || c >= 0x7f) return false;
  }
  return IsPort(text.substr(colon + 1));
}

}  // namespace

Result<std::string> NormalizeBrokerUrl(const std::string& flag, const std::string& text) {
  if (text.find(',') != std::string::npos) {
    // A replicated group's bootstrap list: each entry in any form below.
    std::string list;
    size_t start = 0;
    while (true) {
      const size_t comma = text.find(',', start);
      const std::string item =
          text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
      auto url = NormalizeBrokerUrl(flag + " entry", item);
      if (!url.ok()) return url.status();
      list += (list.empty() ? "" : ",") + *url;
      if (comma == std::string::npos) return list;
      start = comma + 1;
    }
  }
  if (text.rfind("tcp://", 0) == 0 && IsHostPort(text.substr(6))) return text;
  if (text.rfind("ipc://", 0) == 0 && text.size() > 6) return text;
  if (text.find("://") == std::string::npos) {
    if (IsHostPort(text)) return "tcp://" + text;
    if (IsPort(text)) return "tcp://127.0.0.1:" + text;
  }
  return Status::InvalidArgument(
      flag + " '" + OneLine(text, 80) +
      "' is not a broker address: write tcp://HOST:PORT (e.g. tcp://127.0.0.1:7800), "
      "HOST:PORT, a port, or ipc://PATH");
}

void Ctl::StartClock() { deadline_ = SteadyClock::now() + timeout(); }

std::chrono::milliseconds Ctl::Left() const {
  const auto left =
      std::chrono::duration_cast<std::chrono::milliseconds>(deadline_ - SteadyClock::now());
  return std::max(left, std::chrono::milliseconds(1));
}

std::chrono::milliseconds Ctl::timeout() const {
  int64_t ms = ParseDurationMs(globals_.timeout);
  return std::chrono::milliseconds(ms > 0 ? ms : 10'000);
}

Result<std::unique_ptr<net::Connection>> Ctl::OpenAdmin(
    const std::string& broker, std::optional<std::chrono::milliseconds> budget,
    bool follow_leader) {
  auto keys = Keys();
  if (!keys.ok()) return keys.status();
  used_broker_ = true;
  net::ConnectionOptions o;
  o.curve = *keys;
  o.broker = broker;
  o.follow_leader = follow_leader;
  o.role = wire::Role::ADMIN;
  o.software = std::string("txmqctl ") + kVersion;
  auto c = net::Connection::Open(o);
  if (!c.ok()) return c.status();
  if (Status s = WaitReachable(**c, budget); !s.ok()) return s;
  return std::move(c.value());
}

Status Ctl::WaitReachable(net::Connection& connection,
                          std::optional<std::chrono::milliseconds> budget) {
  used_broker_ = true;
  return connection.WaitConnected(budget.value_or(Left()));
}

Result<curve::ClientKeys> Ctl::Keys() {
  if (!keys_) {
    auto keys = curve::LoadClientKeys(globals_.curve_key, globals_.server_key);
    if (!keys.ok()) return keys.status();
    keys_ = *keys;
  }
  return *keys_;
}

Result<std::string> Ctl::Broker() {
  if (globals_.broker_group.empty()) return globals_.broker;
  if (!resolved_broker_.empty()) return resolved_broker_;
  auto c = OpenAdmin(globals_.broker);
  if (!c.ok()) return c.status();
  auto request = (*c)->NewRequest();
  request.envelope().setClusterStatus();
  auto reply = (*c)->CallSync(std::move(request), Left());
  if (!reply.ok()) return reply.status();
  const std::string& wanted = globals_.broker_group;
  if (reply->envelope().which() != wire::Envelope::CLUSTER_STATUS_OK) {
    return Status::FailedPrecondition("--broker-group " + wanted + ": the broker at " +
                                      globals_.broker +
                                      " does not know cluster status (older than txmqctl?)");
  }
  const wire::ClusterStatusView view =
      wire::ReadClusterStatus(reply->envelope().getClusterStatusOk());
  if (!view.member) {
    return Status::InvalidArgument("--broker-group " + wanted + ": the broker at " +
                                   globals_.broker +
                                   " is a single broker, not a node of a cluster");
  }
  std::vector<std::string> names;
  for (const wire::GroupLeaderView& g : view.groups) {
    names.push_back(g.group);
    if (g.group != wanted) continue;
    if (g.node_urls.empty()) {
      return Status::Unavailable("broker group " + wanted + " of cluster " + view.cluster +
                                 " has no live node registered (is it down?)");
    }
    for (const std::string& url : g.node_urls) {
      resolved_broker_ += (resolved_broker_.empty() ? "" : ",") + url;
    }
    return resolved_broker_;
  }
  std::string known;
  for (const std::string& n : names) known += (known.empty() ? "" : ", ") + n;
  const std::string nearest = Nearest(wanted, names);
  return Status::NotFound("cluster " + view.cluster + " has no broker group '" + wanted +
                          "' (its groups: " + (known.empty() ? "none known yet" : known) + ")" +
                          (nearest.empty() ? "" : "; did you mean '" + nearest + "'?"));
}

Result<net::Connection*> Ctl::Connection() {
  if (!connection_) {
    auto broker = Broker();
    if (!broker.ok()) return broker.status();
    auto c = OpenAdmin(*broker);
    if (!c.ok()) return c.status();
    connection_ = std::move(c.value());
  }
  return connection_.get();
}

Result<wire::Frame> Ctl::Call(const std::function<void(wire::Envelope::Builder)>& fill) {
  auto c = Connection();
  if (!c.ok()) return c.status();
  auto request = (*c)->NewRequest();
  fill(request.envelope());
  return (*c)->CallSync(std::move(request), Left());
}

int Ctl::Fail(const Status& status) const {
  const int code = ExitCodeOf(status, used_broker_);
  std::string text = status.ToString();
  // Nothing listening is a different fix from a broker that took a
  // connection but did not answer (stopped, overloaded).
  if (code == kExitUnreachable &&
      status.message().find("connection refused") != std::string::npos) {
    text += "; start txmqd there, or set --broker or TXMQ_BROKER";
  } else if (code == kExitUnreachable) {
    text += "; is txmqd at " + globals_.broker + " stopped or overloaded? (--timeout is " +
            FormatDurationMs(timeout().count()) + ")";
  }
  std::cerr << "txmqctl: " << text << "\n";
  return code;
}

int Ctl::Usage(const std::string& message) const {
  std::cerr << "txmqctl: " << message << " (see --help)\n";
  return kExitUsage;
}

namespace {

// Structure only (lead and continuation bytes); JSON output also replaces
// anything its own stricter check rejects.
bool IsValidUtf8(const std::string& s) {
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    size_t extra;
    if (c < 0x80) {
      extra = 0;
    } else if ((c & 0xe0) == 0xc0) {
      extra = 1;
    } else if ((c & 0xf0) == 0xe0) {
      extra = 2;
    } else if ((c & 0xf8) == 0xf0) {
      extra = 3;
    } else {
      return false;
    }
    if (i + extra >= s.size() && extra > 0) return false;
    for (size_t k = 1; k <= extra; ++k) {
      if ((static_cast<unsigned char>(s[i + k]) & 0xc0) != 0x80) return false;
    }
    i += extra + 1;
  }
  return true;
}

std::string Base64(const std::string& in) {
  static const char* kChars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    uint32_t v = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8) | uint8_t(in[i + 2]);
    for (int k = 3; k >= 0; --k) out += kChars[(v >> (6 * k)) & 63];
  }
  if (i + 1 == in.size()) {
    uint32_t v = uint8_t(in[i]) << 16;
    out += kChars[(v >> 18) & 63];
    out += kChars[(v >> 12) & 63];
    out += "==";
  } else if (i + 2 == in.size()) {
    uint32_t v = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8);
    out += kChars[(v >> 18) & 63];
    out += kChars[(v >> 12) & 63];
    out += kChars[(v >> 6) & 63];
    out += '=';
  }
  return out;
}

}  // namespace

void PutBytes(nlohmann::json& out, const std::string& field, const std::string& bytes) {
  if (IsValidUtf8(bytes)) {
    out[field] = bytes;
  } else {
    out[field + "_base64"] = Base64(bytes);
  }
}

std::string Preview(const std::string& bytes, size_t max) {
  bool printable = IsValidUtf8(bytes);
  for (unsigned char c : bytes) printable = printable && (c >= 0x20 || c == '\t');
  if (!printable) return "<" + std::to_string(bytes.size()) + " bytes, binary>";
  if (bytes.size() <= max) return bytes;
  return bytes.substr(0, max) + "... (" + std::to_string(bytes.size()) + " bytes)";
}

Status ValidateId(const std::string& what, const std::string& id) {
  bool printable = !id.empty() && id.size() <= 128;  // the broker's limit
  for (unsigned char c : id) printable = printable && c > 0x20 && c < 0x7f;
  if (printable) return Status::OK();
  return Status::InvalidArgument(what + " '" + OneLine(id, 60) +
                                 "' is not an id (printable ASCII without spaces)");
}

std::string Count(uint64_t n, const std::string& noun) {
  return std::to_string(n) + " " + noun + (n == 1 ? "" : "s");
}

void PrintJson(const nlohmann::json& j) {
  std::cout << j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
}

int64_t ParseDurationArg(const std::string& text) { return ParseDurationMs(text); }

std::string FormatTimeMs(int64_t epoch_ms) {
  if (epoch_ms <= 0) return "-";
  const std::time_t seconds = static_cast<std::time_t>(epoch_ms / 1000);
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &utc);
  return buf;
}

std::string AgeMs(int64_t epoch_ms) {
  if (epoch_ms <= 0) return "-";
  // Clocks of broker and operator may differ a little: never a negative age.
  return FormatDurationMs(std::max<int64_t>(0, NowMs() - epoch_ms));
}

std::string OneLine(const std::string& text, size_t max) {
  std::string out = text;
  for (char& c : out) {
    if (c == '\n' || c == '\r' || c == '\t') c = ' ';
  }
  if (out.size() > max) {
    size_t cut = max > 3 ? max - 3 : 0;
    while (cut > 0 && (static_cast<unsigned char>(out[cut]) & 0xc0) == 0x80) --cut;  // UTF-8
    out = out.substr(0, cut) + "...";
  }
  return out;
}

std::vector<BrokerGroupView> OtherBrokerGroups(
    Ctl& ctl, const std::function<void(wire::Envelope::Builder)>& fill, std::string* home) {
  std::vector<BrokerGroupView> out;
  if (!ctl.broker_group().empty()) return out;  // one broker group asked for
  auto status = ctl.Call([](wire::Envelope::Builder e) { e.setClusterStatus(); });
  if (!status.ok() || status->envelope().which() != wire::Envelope::CLUSTER_STATUS_OK) return out;
  const wire::ClusterStatusView view =
      wire::ReadClusterStatus(status->envelope().getClusterStatusOk());
  if (!view.member) return out;
  *home = view.group;
  for (const wire::GroupLeaderView& g : view.groups) {
    if (g.group == view.group) continue;
    if (g.node_urls.empty()) {
      out.push_back({g.group, Status::Unavailable("no node of broker group " + g.group +
                                                  " is registered (is it down?)")});
      continue;
    }
    std::string nodes;
    for (const std::string& url : g.node_urls) nodes += (nodes.empty() ? "" : ",") + url;
    auto c = ctl.OpenAdmin(nodes);
    if (!c.ok()) {
      out.push_back({g.group, c.status()});
      continue;
    }
    auto request = (*c)->NewRequest();
    fill(request.envelope());
    out.push_back({g.group, (*c)->CallSync(std::move(request), ctl.Left())});
  }
  return out;
}

nlohmann::json GroupLagJson(wire::GroupLag::Reader g) {
  return {{"group", wire::ToString(g.getGroup())},
          {"lag", g.getLag()},
          {"in_flight", g.getInFlight()},
          {"retrying", g.getRetrying()}};
}

}  // namespace txmq::ctl
