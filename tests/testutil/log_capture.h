// Copies what one of txmq's loggers (protocol/src/log.h) writes while the
// capture lives: for tests of an in-process broker that check a log line.
// Thread safety: the sink is thread-safe; create and destroy the capture on
// the test thread while nothing else adds or removes sinks.
#pragma once

#include <spdlog/sinks/ostream_sink.h>

#include <algorithm>
#include <memory>
#include <sstream>
#include <string>

#include "protocol/src/log.h"

namespace txmq::testing {

class LogCapture {
 public:
  explicit LogCapture(const std::string& module = "broker")
      : module_(module), sink_(std::make_shared<spdlog::sinks::ostream_sink_mt>(out_)) {
    Logger(module_)->sinks().push_back(sink_);
  }
  ~LogCapture() { std::erase(Logger(module_)->sinks(), sink_); }
  LogCapture(const LogCapture&) = delete;
  LogCapture& operator=(const LogCapture&) = delete;

  std::string text() {
    sink_->flush();
    return out_.str();
  }

 private:
  std::string module_;
  std::ostringstream out_;
  std::shared_ptr<spdlog::sinks::ostream_sink_mt> sink_;
};

}  // namespace txmq::testing
