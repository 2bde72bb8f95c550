// Per-module loggers ("broker", "storage", "producer", ...) on stderr, one
// line each: "2026-12-01T10:00:00.123Z info  [txmq.broker] message". Times
// are UTC and say so (the Z), as txmqctl prints them.
//
// Logger("audit") is the audit trail of operator actions. It is not a debug
// log: it writes whatever the log level (SetLogLevel leaves it alone), to
// stderr and, once SetAuditFile named one, to an append-only file too.
//
// Thread safety: every function here may be called from any thread.
#pragma once

#include <spdlog/spdlog.h>

#include <memory>
#include <string>
#include <string_view>

#include "txmq/status.h"

namespace txmq {

// The logger of one module, created on first use.
std::shared_ptr<spdlog::logger> Logger(const std::string& module);

// Appends audit lines to `path` from now on (created if missing). Called
// again with the same path it reopens the file: after log rotation renamed
// it, new lines go to a new file at `path`. "" stops writing to a file. On
// failure the previous file (if any) stays in use.
Status SetAuditFile(const std::string& path);

// `text` made safe for one field of an audit line: control characters,
// backslash and the single quote become escapes (\n, \\, \', \x1b), so no
// value a client sends (an operator name, a reason, a key) can end the line
// or forge the next one. One audit line is one action.
std::string AuditField(std::string_view text);
// The same for a field written without quotes (key=value): a space is
// escaped too (\x20), so a value cannot add a key of its own.
std::string AuditToken(std::string_view text);

}  // namespace txmq
