#include "protocol/src/log.h"

#include <spdlog/sinks/stdout_color_sinks.h>

#include <atomic>
#include <mutex>

#include "txmq/logging.h"

namespace txmq {
namespace {

std::atomic<spdlog::level::level_enum> g_level{spdlog::level::info};
std::mutex g_create_mu;

spdlog::level::level_enum ToSpd(LogLevel level) {
  switch (level) {
    case LogLevel::kTrace:
      return spdlog::level::trace;
    case LogLevel::kDebug:
      return spdlog::level::debug;
    case LogLevel::kInfo:
      return spdlog::level::info;
    case LogLevel::kWarn:
      return spdlog::level::warn;
    case LogLevel::kError:
      return spdlog::level::err;
    case LogLevel::kCritical:
      return spdlog::level::critical;
    case LogLevel::kOff:
      return spdlog::level::off;
  }
  return spdlog::level::info;
}

}  // namespace

std::shared_ptr<spdlog::logger> Logger(const std::string& module) {
  const std::string name = "txmq." + module;
  if (auto existing = spdlog::get(name)) return existing;
  std::lock_guard<std::mutex> lock(g_create_mu);
  if (auto existing = spdlog::get(name)) return existing;
  auto logger = spdlog::stderr_color_mt(name);
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%-5l%$ [%n] %v");
  logger->set_level(g_level.load());
  logger->flush_on(spdlog::level::warn);
  return logger;
}

Result<LogLevel> ParseLogLevel(std::string_view name) {
  if (name == "trace") return LogLevel::kTrace;
  if (name == "debug") return LogLevel::kDebug;
  if (name == "info") return LogLevel::kInfo;
  if (name == "warn" || name == "warning") return LogLevel::kWarn;
  if (name == "error") return LogLevel::kError;
  if (name == "critical") return LogLevel::kCritical;
  if (name == "off") return LogLevel::kOff;
  return Status::InvalidArgument("log level '" + std::string(name) +
                                 "' is not one of trace, debug, info, warn, error, critical, off");
}

void SetLogLevel(LogLevel level) {
  g_level = ToSpd(level);
  spdlog::apply_all([&](std::shared_ptr<spdlog::logger> l) {
    if (l->name().rfind("txmq.", 0) == 0) l->set_level(g_level.load());
  });
}

}  // namespace txmq
