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
//
// A value CLI11 or txmqd refuses later (`retention = "forever"`) is told
// as the flag's error; ConfigOrigin puts the file and line in front of it,
// since CLI11 does not say which source set a value.
#pragma once

#include <CLI/CLI.hpp>
#include <map>
#include <memory>
#include <string>
#include <string_view>

namespace txmq::broker {

// The keys a config file set and their lines, as the reader read them.
struct ConfigLines {
  std::string file;                  // the --config value
  std::map<std::string, int> lines;  // key (a long flag name) -> line
};

// A config formatter for `app` (which must outlive it) that notes what it
// read in `read` (may be null; must outlive the formatter):
//   app.config_formatter(StrictConfig(app, &lines));
std::shared_ptr<CLI::Config> StrictConfig(const CLI::App& app, ConfigLines* read = nullptr);

// "config file 'F' line N: " when `message` starts with the flag (--key)
// of a key the file set and the command line `argv` did not give (a flag
// there wins over the file, so the file's value was not the one refused);
// "" else.
std::string ConfigOrigin(const ConfigLines& read, const CLI::App& app, std::string_view message,
                         int argc, const char* const* argv);

// A config file naming every option `app` takes from one (txmqd
// --print-config; tools/packaging/txmqd.conf is its output): each key with
// its --help text above it, commented out at its default ("key = false"
// for a flag, "key =" when there is no default), in --help order. Every
// line that has a value is valid when uncommented.
std::string SampleConfig(const CLI::App& app);

}  // namespace txmq::broker
