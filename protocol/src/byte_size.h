// Byte sizes as people write and read them: "1GiB", "512MiB", "64KiB",
// "1.5GB", "4096" (flags, config files, logs, txmqctl).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace txmq {

// Bytes, or nullopt when `text` is not a size. A number (a fraction is
// allowed) and an optional unit: B; KiB MiB GiB TiB (powers of 1024);
// kB KB MB GB TB (powers of 1000). Case-insensitive; no space needed.
// Above 2^62 bytes is refused.
std::optional<uint64_t> ParseByteSize(std::string_view text);

// 1536 -> "1.5 KiB", 40 << 20 -> "40.0 MiB", 512 -> "512 B".
std::string FormatBytes(uint64_t bytes);

}  // namespace txmq
