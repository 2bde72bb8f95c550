#include "protocol/src/log.h"

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/dist_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>

#include <atomic>
#include <mutex>

#include "txmq/logging.h"

namespace txmq {
namespace {

constexpr char kPattern[] = "%Y-%m-%dT%H:%M:%S.%eZ %^%-5l%$ [%n] %v";
constexpr char kAuditName[] = "txmq.audit";

std::atomic<spdlog::level::level_enum> g_level{spdlog::level::info};
std::mutex g_create_mu;

std::unique_ptr<spdlog::formatter> Formatter() {
  return std::make_unique<spdlog::pattern_formatter>(kPattern, spdlog::pattern_time_type::utc);
}

// The audit logger's sinks: stderr always, the file while one is set.
struct AuditSinks {
  std::mutex mu;  // one SetAuditFile at a time
  std::shared_ptr<spdlog::sinks::dist_sink_mt> all =
      std::make_shared<spdlog::sinks::dist_sink_mt>();
  std::shared_ptr<spdlog::sinks::sink> console =
      std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
};

AuditSinks& Audit() {
  static AuditSinks* sinks = [] {
    auto* s = new AuditSinks;  // lives as long as the process: loggers log until exit
    s->console->set_formatter(Formatter());
    s->all->set_sinks({s->console});
    return s;
  }();
  return *sinks;
}

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
  if (name == kAuditName) {
    // Every line, at once, whatever the log level.
    auto logger = std::make_shared<spdlog::logger>(name, Audit().all);
    logger->set_level(spdlog::level::trace);
    logger->flush_on(spdlog::level::trace);
    spdlog::register_logger(logger);
    return logger;
  }
  auto logger = spdlog::stderr_color_mt(name);
  logger->set_formatter(Formatter());
  logger->set_level(g_level.load());
  logger->flush_on(spdlog::level::warn);
  return logger;
}

Status SetAuditFile(const std::string& path) {
  AuditSinks& audit = Audit();
  std::lock_guard<std::mutex> lock(audit.mu);
  if (path.empty()) {
    audit.all->set_sinks({audit.console});
    return Status::OK();
  }
  std::shared_ptr<spdlog::sinks::sink> file;
  try {
    file = std::make_shared<spdlog::sinks::basic_file_sink_mt>(path, /*truncate=*/false);
  } catch (const spdlog::spdlog_ex& e) {
    return Status::InvalidArgument("cannot open audit log '" + path + "': " + e.what());
  }
  file->set_formatter(Formatter());
  // The previous file closes once the line being written (if any) is done.
  audit.all->set_sinks({audit.console, file});
  return Status::OK();
}

namespace {

std::string EscapeForAudit(std::string_view text, bool escape_space) {
  std::string out;
  out.reserve(text.size());
  for (const char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '\\' || c == '\'') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (u < 0x20 || u == 0x7f || (escape_space && c == ' ')) {
      static constexpr char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[u >> 4];
      out += kHex[u & 0xf];
    } else {
      out += c;  // printable ASCII and UTF-8 bytes as they are
    }
  }
  return out;
}

}  // namespace

std::string AuditField(std::string_view text) { return EscapeForAudit(text, false); }
std::string AuditToken(std::string_view text) { return EscapeForAudit(text, true); }

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
    if (l->name().rfind("txmq.", 0) == 0 && l->name() != kAuditName) l->set_level(g_level.load());
  });
}

}  // namespace txmq
