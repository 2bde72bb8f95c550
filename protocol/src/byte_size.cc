#include "protocol/src/byte_size.h"

#include <cctype>
#include <cstdio>

namespace txmq {

namespace {

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

}  // namespace

std::optional<uint64_t> ParseByteSize(std::string_view text) {
  size_t i = 0;
  double value = 0;
  double scale = 0;  // 0: no '.' seen yet
  bool digits = false;
  for (; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '.') {
      if (scale != 0) return std::nullopt;
      scale = 1;
    } else if (c >= '0' && c <= '9') {
      digits = true;
      if (scale != 0) {
        scale /= 10;
        value += (c - '0') * scale;
      } else {
        value = value * 10 + (c - '0');
      }
    } else {
      break;
    }
  }
  if (!digits) return std::nullopt;
  while (i < text.size() && text[i] == ' ') ++i;
  const std::string unit = Lower(text.substr(i));
  double multiplier;
  if (unit.empty() || unit == "b") {
    multiplier = 1;
  } else if (unit == "kib" || unit == "k") {
    multiplier = 1024.0;
  } else if (unit == "mib" || unit == "m") {
    multiplier = 1024.0 * 1024;
  } else if (unit == "gib" || unit == "g") {
    multiplier = 1024.0 * 1024 * 1024;
  } else if (unit == "tib" || unit == "t") {
    multiplier = 1024.0 * 1024 * 1024 * 1024;
  } else if (unit == "kb") {
    multiplier = 1e3;
  } else if (unit == "mb") {
    multiplier = 1e6;
  } else if (unit == "gb") {
    multiplier = 1e9;
  } else if (unit == "tb") {
    multiplier = 1e12;
  } else {
    return std::nullopt;
  }
  const double bytes = value * multiplier;
  if (bytes > static_cast<double>(1ull << 62)) return std::nullopt;
  return static_cast<uint64_t>(bytes + 0.5);
}

std::string FormatBytes(uint64_t bytes) {
  static constexpr const char* kUnits[] = {"KiB", "MiB", "GiB", "TiB", "PiB"};
  if (bytes < 1024) return std::to_string(bytes) + " B";
  double value = static_cast<double>(bytes) / 1024;
  int unit = 0;
  while (value >= 1024 && unit + 1 < static_cast<int>(std::size(kUnits))) {
    value /= 1024;
    ++unit;
  }
  char out[32];
  std::snprintf(out, sizeof out, "%.1f %s", value, kUnits[unit]);
  return out;
}

}  // namespace txmq
