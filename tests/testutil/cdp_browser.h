// A headless Chromium for tests, driven over the Chrome DevTools Protocol
// on a pipe (--remote-debugging-pipe): the browser reads commands from its
// descriptor 3 and writes replies and events to its descriptor 4, each a
// JSON object ended by a NUL byte. No WebSocket, no port, nothing another
// process on the machine can talk to.
//
// Every wait is bounded: a call waits for its own reply, a page condition
// is polled (WaitUntil) until true or a deadline, never slept on.
//
// The browser runs in a process group of its own with a fresh profile in
// a temporary directory; the destructor SIGKILLs the group and removes
// the directory.
//
// Thread safety: one thread at a time.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "tests/testutil/testutil.h"
#include "txmq/status.h"

namespace txmq::testing {

class CdpBrowser {
 public:
  // Starts $TXMQ_CHROMIUM (default: chromium) headless. UNAVAILABLE when
  // it cannot be started or does not answer.
  static Result<std::unique_ptr<CdpBrowser>> Launch();
  ~CdpBrowser();
  CdpBrowser(const CdpBrowser&) = delete;
  CdpBrowser& operator=(const CdpBrowser&) = delete;

  // Sends `method` (to the page of `session`, or the browser when "") and
  // returns the reply's "result"; the reply's error as INTERNAL.
  Result<nlohmann::json> Call(const std::string& method, const nlohmann::json& params,
                              const std::string& session = "",
                              std::chrono::milliseconds timeout = std::chrono::seconds(15));
  // Opens a new tab on `url`; returns its session id (for Call, Evaluate).
  Result<std::string> OpenPage(const std::string& url);
  // Runs a JavaScript expression in the page and returns its value (a
  // promise is awaited). A thrown exception is INTERNAL with its text.
  Result<nlohmann::json> Evaluate(const std::string& session, const std::string& expression);
  // Polls `expression` until it is truthy; false at the deadline.
  bool WaitUntil(const std::string& session, const std::string& expression,
                 std::chrono::milliseconds timeout = std::chrono::seconds(15));
  // What the browser wrote on stdout and stderr, for a failing test.
  std::string log() const;

 private:
  CdpBrowser() = default;
  // The next complete message from the browser, or an error at `deadline`.
  Result<nlohmann::json> Read(std::chrono::steady_clock::time_point deadline);

  std::unique_ptr<TempDir> dir_;
  pid_t pid_ = -1;
  int to_browser_ = -1;
  int from_browser_ = -1;
  std::string pending_;  // bytes read past the last NUL
  uint64_t next_id_ = 0;
};

}  // namespace txmq::testing
