// Log level of every txmq logger in this process. Logs go to stderr, one
// line each: time (UTC, "2026-12-01T10:00:00.123Z"), level, module,
// message. The audit trail of operator actions ([txmq.audit]) is written
// whatever the level.
//
// Thread safety: safe to call from any thread.
#pragma once

#include <string_view>

#include "txmq/status.h"

namespace txmq {

enum class LogLevel { kTrace, kDebug, kInfo, kWarn, kError, kCritical, kOff };

// "trace", "debug", "info", "warn", "error", "critical", "off".
Result<LogLevel> ParseLogLevel(std::string_view name);
void SetLogLevel(LogLevel level);

}  // namespace txmq
