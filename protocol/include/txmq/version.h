#pragma once

namespace txmq {

inline constexpr const char* kVersion = "0.1.0";

}  // namespace txmq
