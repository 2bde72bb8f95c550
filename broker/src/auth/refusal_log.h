// Spaces out the "refused ..." warnings of the auth log: a scanner or a
// misconfigured client must not flood it. At most one line per interval;
// the next line says how many were left out since.
//
// Thread safety: none; each owner uses it from one thread (the core's
// guard, the ZAP handler's thread).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "protocol/src/log.h"
#include "protocol/src/util.h"

namespace txmq::broker::auth {

class RefusalLog {
 public:
  explicit RefusalLog(std::chrono::seconds every = std::chrono::seconds(5)) : every_(every) {}

  // Logs `line` as a warning on "auth", unless a line went out less than
  // the interval ago (then it is only counted). Spacing out needs no
  // injected clock: the steady clock of this process will do.
  void Warn(const std::string& line) {
    const SteadyTime now = SteadyClock::now();
    if (logged_once_ && now - last_log_ < every_) {
      ++unlogged_;
      return;
    }
    Logger("auth")->warn("{}{}", line,
                         unlogged_ == 0 ? std::string()
                                        : " (and " + std::to_string(unlogged_) +
                                              " more refusals not logged in the last " +
                                              std::to_string(every_.count()) + "s)");
    logged_once_ = true;
    last_log_ = now;
    unlogged_ = 0;
  }

 private:
  const std::chrono::seconds every_;
  bool logged_once_ = false;
  SteadyTime last_log_{};
  uint64_t unlogged_ = 0;
};

}  // namespace txmq::broker::auth
