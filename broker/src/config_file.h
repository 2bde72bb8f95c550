// txmqd's --config file: CLI11's TOML/INI reader, made strict.
//
// CLI11 reads almost anything: a line without '=' becomes a flag, a key no
// option has is skipped, so `flsh = "async"` (a typo) or a file that is not
// TOML at all silently starts a broker with the defaults. The reader here
// first checks every line and throws CLI::ConfigError, naming the file and
// the line, for:
//   - a line that is not `key = value`, a comment (# or ;) or blank;
//   - a [section] (txmqd has none: keys are the long flag names);
//   - a key that is no long flag of the app (with the nearest one);
//   - a key set twice; an unterminated string or array; an empty value.
// What passes is then read by CLI11 as before.
#pragma once

#include <CLI/CLI.hpp>
#include <memory>

namespace txmq::broker {

// A config formatter for `app` (which must outlive it):
//   app.config_formatter(StrictConfig(app));
std::shared_ptr<CLI::Config> StrictConfig(const CLI::App& app);

// A config file naming every option `app` takes from one (txmqd
// --print-config; tools/packaging/txmqd.conf is its output): each key with
// its --help text above it, commented out at its default ("key = false"
// for a flag, "key =" when there is no default), in --help order. Every
// line that has a value is valid when uncommented.
std::string SampleConfig(const CLI::App& app);

}  // namespace txmq::broker
