// Spaces out "refused ..." warnings (the auth log's, the replication
// links'): a scanner or a misconfigured client must not flood the log. At
// most one line per interval; the next line says how many were left out
// since.
//
// Thread safety: none; each owner uses it from one thread (the core's
// guard, a ZAP handler's thread).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <utility>

#include "protocol/src/log.h"
#include "protocol/src/util.h"

namespace txmq::broker::auth {

class RefusalLog {
 public:
  explicit RefusalLog(std::string logger = "auth",
                      std::chrono::seconds every = std::chrono::seconds(5))
      : logger_(std::move(logger)), every_(every) {}

  // Logs `line` as a warning on the logger named at construction, unless
  // a line went out less than the interval ago (then it is only counted).
  // Spacing out needs no injected clock: the steady clock of this process
  // will do.
  void Warn(const std::string& line) {
    const SteadyTime now = SteadyClock::now();
    if (logged_once_ && now - last_log_ < every_) {
      ++unlogged_;
      return;
    }
    Logger(logger_)->warn("{}{}", line,
                          unlogged_ == 0 ? std::string()
                                         : " (and " + std::to_string(unlogged_) +
                                               " more refusals not logged in the last " +
                                               std::to_string(every_.count()) + "s)");
    logged_once_ = true;
    last_log_ = now;
    unlogged_ = 0;
  }

 private:
  const std::string logger_;
  const std::chrono::seconds every_;
  bool logged_once_ = false;
  SteadyTime last_log_{};
  uint64_t unlogged_ = 0;
};

}  // namespace txmq::broker::auth
