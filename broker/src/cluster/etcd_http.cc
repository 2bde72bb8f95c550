// HTTP to etcd's JSON gateway with libcurl.
//
// Why libcurl (libcurl4-openssl-dev) and not cpp-httplib or gRPC stubs:
// - its CURLOPT_TIMEOUT_MS bounds a whole call (connect, send, wait,
//   read), which is the promise coordinator.h makes; cpp-httplib 0.11 only
//   bounds each socket read and write, so a trickling answer can outlast
//   any deadline;
// - it is a small C library already on every Debian machine (libcurl4): one
//   .cc file compiles against curl.h in a second, where cpp-httplib's
//   8,000-line header or generated gRPC/protobuf code cost much more build
//   time, and gRPC brings a second event loop and its own threads;
// - coordination traffic is a few calls a second: a JSON round trip costs
//   nothing that matters next to etcd's own fsync.
//
// Each call uses its own easy handle, so calls from different threads share
// nothing and need no lock. TODO(perf): keep one connection per thread if
// the call rate ever matters.
#include "broker/src/cluster/etcd_http.h"

#include <curl/curl.h>

#include <array>
#include <cstdint>
#include <memory>
#include <mutex>
#include <stdexcept>

namespace txmq::cluster::etcd {
namespace {

// An answer larger than this is not one of ours: the cluster's keys are
// small and few.
constexpr size_t kMaxAnswerBytes = 16u << 20;

size_t Append(char* data, size_t size, size_t count, void* out) {
  auto* body = static_cast<std::string*>(out);
  if (body->size() + size * count > kMaxAnswerBytes) return 0;  // aborts the transfer
  body->append(data, size * count);
  return size * count;
}

struct EasyDeleter {
  void operator()(CURL* c) const { curl_easy_cleanup(c); }
};
struct ListDeleter {
  void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};

// gRPC status codes (grpc/status.h) as the gateway reports them in "code".
Status FromGrpc(int code, std::string message) {
  switch (code) {
    case 3:   // INVALID_ARGUMENT
    case 11:  // OUT_OF_RANGE
      return Status::InvalidArgument(std::move(message));
    case 4:  // DEADLINE_EXCEEDED
      return Status::Timeout(std::move(message));
    case 5:  // NOT_FOUND
      return Status::NotFound(std::move(message));
    case 6:   // ALREADY_EXISTS
    case 10:  // ABORTED
      return Status::Conflict(std::move(message));
    case 7:   // PERMISSION_DENIED
    case 16:  // UNAUTHENTICATED
      return Status::PermissionDenied(std::move(message));
    case 8:  // RESOURCE_EXHAUSTED
      return Status::ResourceExhausted(std::move(message));
    case 9:  // FAILED_PRECONDITION
      return Status::FailedPrecondition(std::move(message));
    case 1:   // CANCELLED
    case 14:  // UNAVAILABLE
      return Status::Unavailable(std::move(message));
    default:
      return Status::Internal(std::move(message));
  }
}

// etcd answers a failed call with {"error": "...", "code": N, "message": "..."}.
Status FromErrorAnswer(long http_status, const std::string& body, std::string prefix) {
  auto j = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_object() && j.contains("code") && j["code"].is_number_integer()) {
    std::string what = j.value("message", j.value("error", std::string("no message")));
    return FromGrpc(j["code"].get<int>(), prefix + "etcd says: " + what);
  }
  prefix += "HTTP " + std::to_string(http_status) + ": " + body.substr(0, 200);
  if (http_status == 503 || http_status == 502) return Status::Unavailable(std::move(prefix));
  if (http_status == 504) return Status::Timeout(std::move(prefix));
  if (http_status == 404) return Status::Internal(prefix + " (not an etcd 3.4+ JSON gateway?)");
  return Status::Internal(std::move(prefix));
}

// The answer of a streaming call (lease keep-alive) is one JSON document
// per line; the first one is ours.
nlohmann::json ParseAnswer(const std::string& body) {
  auto j = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (!j.is_discarded()) return j;
  size_t end = body.find('\n');
  if (end == std::string::npos) return nlohmann::json::parse(body);  // throws with the reason
  return nlohmann::json::parse(body.substr(0, end));
}

}  // namespace

Result<nlohmann::json> Post(const std::string& endpoint, const EtcdOptions& options,
                            const char* call, std::string_view path, const nlohmann::json& request,
                            bool* connected) {
  *connected = false;
  static std::once_flag curl_init;
  std::call_once(curl_init, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });

  const std::string url = endpoint + std::string(path);
  std::string prefix = "etcd at " + endpoint + ": " + call + " (POST " + std::string(path) + "): ";
  std::unique_ptr<CURL, EasyDeleter> easy(curl_easy_init());
  if (!easy) return Status::Internal(prefix + "curl_easy_init failed");
  std::unique_ptr<curl_slist, ListDeleter> headers(
      curl_slist_append(nullptr, "Content-Type: application/json"));
  // No "Expect: 100-continue" round trip before a larger body.
  headers.reset(curl_slist_append(headers.release(), "Expect:"));

  const std::string body = request.dump();
  std::string answer;
  std::array<char, CURL_ERROR_SIZE> error{};
  CURL* c = easy.get();
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers.get());
  curl_easy_setopt(c, CURLOPT_POSTFIELDS, body.c_str());
  curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, &Append);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &answer);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, error.data());
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS,
                   static_cast<long>(options.connect_timeout.count()));
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, static_cast<long>(options.request_timeout.count()));
  // Timeouts by poll, not SIGALRM: signals are process-wide and the broker
  // has other threads.
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  // etcd is reached directly: an http_proxy in the environment must not
  // route coordination through a proxy (or fail on a loopback address).
  curl_easy_setopt(c, CURLOPT_PROXY, "");
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http");

  CURLcode rc = curl_easy_perform(c);
  curl_off_t connected_us = 0;
  curl_easy_getinfo(c, CURLINFO_CONNECT_TIME_T, &connected_us);
  *connected = connected_us != 0;
  if (rc != CURLE_OK) {
    std::string detail = error[0] != '\0' ? error.data() : curl_easy_strerror(rc);
    if (rc == CURLE_WRITE_ERROR) {
      return Status::Internal(prefix + "answer larger than " +
                              std::to_string(kMaxAnswerBytes >> 20) + " MiB");
    }
    if (connected_us == 0) return Status::Unavailable(prefix + "cannot connect: " + detail);
    if (rc == CURLE_OPERATION_TIMEDOUT) {
      return Status::Timeout(prefix + "no answer within " +
                             std::to_string(options.request_timeout.count()) +
                             " ms; the outcome is unknown");
    }
    return Status::Unavailable(prefix + detail + "; the outcome is unknown");
  }
  long http_status = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &http_status);
  if (http_status != 200) return FromErrorAnswer(http_status, answer, std::move(prefix));
  try {
    return ParseAnswer(answer);
  } catch (const std::exception& e) {
    return Status::Corruption(prefix + "answer is not JSON: " + e.what());
  }
}

std::string Base64Encode(std::string_view bytes) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  for (size_t i = 0; i < bytes.size(); i += 3) {
    uint32_t n = static_cast<uint8_t>(bytes[i]) << 16;
    if (i + 1 < bytes.size()) n |= static_cast<uint8_t>(bytes[i + 1]) << 8;
    if (i + 2 < bytes.size()) n |= static_cast<uint8_t>(bytes[i + 2]);
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    out += i + 1 < bytes.size() ? kAlphabet[(n >> 6) & 63] : '=';
    out += i + 2 < bytes.size() ? kAlphabet[n & 63] : '=';
  }
  return out;
}

std::string Base64Decode(std::string_view text) {
  auto value = [](char ch) -> int {
    if (ch >= 'A' && ch <= 'Z') return ch - 'A';
    if (ch >= 'a' && ch <= 'z') return ch - 'a' + 26;
    if (ch >= '0' && ch <= '9') return ch - '0' + 52;
    if (ch == '+') return 62;
    if (ch == '/') return 63;
    return -1;
  };
  while (!text.empty() && text.back() == '=') text.remove_suffix(1);
  std::string out;
  out.reserve(text.size() * 3 / 4);
  uint32_t acc = 0;
  int bits = 0;
  for (char ch : text) {
    int v = value(ch);
    if (v < 0) throw std::invalid_argument("not base64: '" + std::string(1, ch) + "'");
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xff);
    }
  }
  return out;
}

Status CheckEndpoint(const std::string& endpoint) {
  const std::string scheme = "http://";
  if (!endpoint.starts_with(scheme) || endpoint.size() == scheme.size()) {
    return Status::InvalidArgument("etcd endpoint '" + endpoint +
                                   "': must be http://HOST:PORT (no TLS yet)");
  }
  if (endpoint.back() == '/') {
    return Status::InvalidArgument("etcd endpoint '" + endpoint + "': no trailing '/'");
  }
  return Status::OK();
}

}  // namespace txmq::cluster::etcd
