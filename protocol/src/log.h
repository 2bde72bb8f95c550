// Per-module loggers ("broker", "storage", "producer", ...) on stderr.
#pragma once

#include <spdlog/spdlog.h>

#include <memory>
#include <string>

namespace txmq {

// The logger of one module, created on first use. Thread-safe.
std::shared_ptr<spdlog::logger> Logger(const std::string& module);

}  // namespace txmq
