#include "protocol/src/broker_list.h"

#include <algorithm>

namespace txmq::net {

namespace {

std::string Trim(const std::string& s) {
  const size_t begin = s.find_first_not_of(" \t");
  if (begin == std::string::npos) return "";
  const size_t end = s.find_last_not_of(" \t");
  return s.substr(begin, end - begin + 1);
}

bool IsPort(const std::string& text) {
  if (text.empty() || text.size() > 5) return false;
  if (!std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return false;
  }
  const int port = std::stoi(text);
  return port >= 1 && port <= 65535;
}

// "HOST:PORT" with no scheme (whatever PORT is: EndpointProblem judges
// it): a host without blanks or slashes before the last colon.
bool IsBareHostPort(const std::string& text) {
  if (text.find("://") != std::string::npos) return false;
  const size_t colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0) return false;
  return std::none_of(text.begin(), text.begin() + static_cast<std::ptrdiff_t>(colon),
                      [](unsigned char c) { return c <= 0x20 || c == '/' || c >= 0x7f; });
}

}  // namespace

std::string WithTcpScheme(const std::string& text) {
  return IsBareHostPort(text) ? "tcp://" + text : text;
}

std::string EndpointProblem(const std::string& url, bool bind) {
  if (url.rfind("tcp://", 0) == 0) {
    const std::string rest = url.substr(6);
    const size_t colon = rest.rfind(':');
    if (colon == std::string::npos || colon == 0) return "has no HOST:PORT after tcp://";
    const std::string port = rest.substr(colon + 1);
    if (!IsPort(port) && !(bind && (port == "*" || port == "0"))) {
      return bind ? "has no port 1-65535 (or *: a free one)" : "has no port 1-65535";
    }
    for (unsigned char c : rest.substr(0, colon)) {
      if (c <= 0x20 || c == '/' || c >= 0x7f || c == ',') return "has a bad host";
    }
    return "";
  }
  for (const char* scheme : {"ipc://", "inproc://"}) {
    const std::string prefix(scheme);
    if (url.rfind(prefix, 0) == 0) return url.size() > prefix.size() ? "" : "has no name";
  }
  return "is not tcp://HOST:PORT (or HOST:PORT), ipc://PATH or inproc://NAME";
}

Result<std::vector<std::string>> ParseBrokerList(const std::string& text) {
  std::vector<std::string> urls;
  size_t start = 0;
  for (int position = 1;; ++position) {
    const size_t comma = text.find(',', start);
    const std::string url = WithTcpScheme(
        Trim(text.substr(start, comma == std::string::npos ? std::string::npos : comma - start)));
    const bool alone = position == 1 && comma == std::string::npos;
    const std::string where =
        alone ? "broker URL" : "broker URL " + std::to_string(position) + " of '" + text + "'";
    if (url.empty()) return Status::InvalidArgument(where + " is empty");
    if (const std::string why = EndpointProblem(url); !why.empty()) {
      return Status::InvalidArgument(alone ? where + " '" + url + "' " + why
                                           : where + ", '" + url + "', " + why);
    }
    if (std::find(urls.begin(), urls.end(), url) != urls.end()) {
      return Status::InvalidArgument(where + ", '" + url + "', appears twice");
    }
    urls.push_back(url);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return urls;
}

}  // namespace txmq::net
