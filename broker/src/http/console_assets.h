// The console's page, script and style sheet, compiled into txmqd from
// broker/src/http/console/ (cmake/embed_assets.cmake writes the table at
// build time): nothing is fetched from anywhere else.
#pragma once

#include <span>
#include <string_view>

namespace txmq::broker::http {

struct ConsoleAsset {
  std::string_view path;  // "/", "/console.js", ...
  std::string_view content_type;
  std::string_view body;
};

std::span<const ConsoleAsset> ConsoleAssets();

}  // namespace txmq::broker::http
