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

// Why `url` is not a broker address a client can connect to; "" if it is.
std::string Problem(const std::string& url) {
  if (url.rfind("tcp://", 0) == 0) {
    const std::string rest = url.substr(6);
    const size_t colon = rest.rfind(':');
    if (colon == std::string::npos || colon == 0) return "has no HOST:PORT after tcp://";
    if (!IsPort(rest.substr(colon + 1))) return "has no port 1-65535";
    for (unsigned char c : rest.substr(0, colon)) {
      if (c <= 0x20 || c == '/' || c >= 0x7f || c == ',') return "has a bad host";
    }
    return "";
  }
  for (const char* scheme : {"ipc://", "inproc://"}) {
    const std::string prefix(scheme);
    if (url.rfind(prefix, 0) == 0) return url.size() > prefix.size() ? "" : "has no name";
  }
  return "is not tcp://HOST:PORT, ipc://PATH or inproc://NAME";
}

}  // namespace

Result<std::vector<std::string>> ParseBrokerList(const std::string& text) {
  std::vector<std::string> urls;
  size_t start = 0;
  for (int position = 1;; ++position) {
    const size_t comma = text.find(',', start);
    const std::string url =
        Trim(text.substr(start, comma == std::string::npos ? std::string::npos : comma - start));
    const std::string where = "broker URL " + std::to_string(position) + " of '" + text + "'";
    if (url.empty()) return Status::InvalidArgument(where + " is empty");
    if (const std::string why = Problem(url); !why.empty()) {
      return Status::InvalidArgument(where + ", '" + url + "', " + why);
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
