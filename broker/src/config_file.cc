#include "broker/src/config_file.h"

#include <algorithm>
#include <cctype>
#include <iterator>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "protocol/src/edit_distance.h"

namespace txmq::broker {

namespace {

// Options a config file may not set: they are about this invocation.
bool NotConfigurable(const std::string& key) {
  return key == "config" || key == "help" || key == "version" || key == "print-config";
}

std::string Shown(const std::string& line) {
  std::string out;
  for (unsigned char c : line) out += (c < 0x20 || c == 0x7f) ? '?' : static_cast<char>(c);
  return out.size() > 60 ? out.substr(0, 57) + "..." : out;
}

// "config file 'F' line N: ", the start of an error about that line.
std::string LineOf(const std::string& file, int line) {
  return (file.empty() ? std::string("the config file") : "config file '" + file + "'") + " line " +
         std::to_string(line) + ": ";
}

std::string Trim(const std::string& s) {
  const size_t begin = s.find_first_not_of(" \t\r");
  if (begin == std::string::npos) return "";
  return s.substr(begin, s.find_last_not_of(" \t\r") - begin + 1);
}

class Strict : public CLI::ConfigBase {
 public:
  Strict(const CLI::App& app, ConfigLines* read) : app_(app), read_(read) {}

  std::vector<CLI::ConfigItem> from_config(std::istream& input) const override {
    std::string text(std::istreambuf_iterator<char>(input), {});
    if (text.rfind("\xEF\xBB\xBF", 0) == 0) text.erase(0, 3);  // a UTF-8 byte order mark
    Check(text);
    if (read_ != nullptr) read_->file = FileName();
    std::istringstream checked(text);
    return CLI::ConfigBase::from_config(checked);
  }

 private:
  // The file being read: CLI11 hands over a stream, the name is the
  // --config option's value.
  std::string FileName() const {
    const CLI::Option* config = app_.get_config_ptr();
    return config != nullptr && config->results().size() == 1 ? config->results()[0] : "";
  }

  std::string Where(int line) const { return LineOf(FileName(), line); }

  [[noreturn]] void Fail(int line, const std::string& what) const {
    throw CLI::ConfigError(Where(line) + what);
  }

  // The long flag names a file may set.
  std::vector<std::string> Keys() const {
    std::vector<std::string> keys;
    for (const CLI::Option* o : app_.get_options()) {
      for (const std::string& name : o->get_lnames()) {
        if (o->get_configurable() && !NotConfigurable(name)) keys.push_back(name);
      }
    }
    return keys;
  }

  void CheckKey(int line, const std::string& key) const {
    const CLI::Option* option = app_.get_option_no_throw("--" + key);
    if (option != nullptr && option->get_configurable() && !NotConfigurable(key)) return;
    if (NotConfigurable(key)) Fail(line, "'" + key + "' cannot be set in a config file");
    const std::string nearest = Nearest(key, Keys());
    Fail(line, "unknown key '" + Shown(key) + "'" +
                   (nearest.empty() ? "" : " (did you mean '" + nearest + "'?)") +
                   "; keys are the long flag names of txmqd --help");
  }

  // A quoted value must close on its line; anything after it is a comment.
  void CheckQuoted(int line, const std::string& key, const std::string& value) const {
    const char quote = value[0];
    size_t end = 1;
    while (end < value.size() && value[end] != quote)
      end += (quote == '"' && value[end] == '\\') ? 2 : 1;
    if (end >= value.size()) Fail(line, "the value of '" + key + "' has no closing " + quote);
    const std::string rest = Trim(value.substr(end + 1));
    if (!rest.empty() && rest[0] != '#') {
      Fail(line, "unexpected '" + Shown(rest) + "' after the value of '" + key + "'");
    }
  }

  void Check(const std::string& text) const {
    std::map<std::string, int> seen;  // key -> line it was set on
    std::istringstream in(text);
    int number = 0;
    for (std::string raw; std::getline(in, raw);) {
      ++number;
      const std::string line = Trim(raw);
      if (line.empty() || line[0] == '#' || line[0] == ';') continue;
      if (line[0] == '[') {
        Fail(number, "'" + Shown(line) +
                         "': txmqd's config has no sections; write key = value at the top level");
      }
      const size_t eq = line.find('=');
      if (eq == std::string::npos) {
        Fail(number, "'" + Shown(line) + "' is not key = value (a flag is written 'name = true')");
      }
      std::string key = Trim(line.substr(0, eq));
      if (key.size() >= 2 && (key[0] == '"' || key[0] == '\'') && key.back() == key[0]) {
        key = key.substr(1, key.size() - 2);
      }
      const bool key_ok = !key.empty() && std::all_of(key.begin(), key.end(), [](unsigned char c) {
        return std::isalnum(c) || c == '-' || c == '_';
      });
      if (!key_ok) Fail(number, "'" + Shown(key) + "' is not a key (letters, digits, '-')");
      CheckKey(number, key);
      if (auto [it, fresh] = seen.emplace(key, number); !fresh) {
        Fail(number,
             "'" + key + "' is set twice (also on line " + std::to_string(it->second) + ")");
      }
      if (read_ != nullptr) read_->lines[key] = number;
      const std::string value = Trim(line.substr(eq + 1));
      if (value.empty() || value[0] == '#') Fail(number, "'" + key + "' has no value");
      if (value[0] == '"' || value[0] == '\'') {
        CheckQuoted(number, key, value);
      } else if (value[0] == '[' && value.find(']') == std::string::npos) {
        // An array may span lines; it must close before the file ends.
        const int opened = number;
        bool closed = false;
        for (std::string more; !closed && std::getline(in, more);) {
          ++number;
          closed = Trim(more).find(']') != std::string::npos;
        }
        if (!closed) Fail(opened, "the array of '" + key + "' is never closed with ']'");
      }
    }
  }

  const CLI::App& app_;
  ConfigLines* const read_;
};

}  // namespace

std::shared_ptr<CLI::Config> StrictConfig(const CLI::App& app, ConfigLines* read) {
  return std::make_shared<Strict>(app, read);
}

namespace {

// `argv` gives the option named by long name `key` (--key, --key=V, or one
// of its short names).
bool OnCommandLine(const CLI::App& app, const std::string& key, int argc, const char* const* argv) {
  const CLI::Option* option = app.get_option_no_throw("--" + key);
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--") break;
    if (arg.rfind("--", 0) == 0) {
      const std::string_view name = arg.substr(2, arg.find('=') - 2);
      if (option != nullptr ? option->check_lname(std::string(name)) : name == key) return true;
    } else if (arg.size() >= 2 && arg[0] == '-' && option != nullptr) {
      if (option->check_sname(std::string(arg.substr(1, 1)))) return true;
    }
  }
  return false;
}

}  // namespace

std::string ConfigOrigin(const ConfigLines& read, const CLI::App& app, std::string_view message,
                         int argc, const char* const* argv) {
  // The flag a usage error is about starts it ("--retention = ...",
  // "--flush: ...", CLI11's "Could not convert: --queues = many"); flags
  // named later are advice ("use --insecure").
  for (std::string_view prefix : {"Could not convert: "}) {
    if (message.starts_with(prefix)) message.remove_prefix(prefix.size());
  }
  if (!message.starts_with("--")) return "";
  size_t end = 2;
  while (end < message.size() && (std::isalnum(static_cast<unsigned char>(message[end])) ||
                                  message[end] == '-' || message[end] == '_')) {
    ++end;
  }
  const std::string key(message.substr(2, end - 2));
  auto it = read.lines.find(key);
  if (it == read.lines.end() || OnCommandLine(app, key, argc, argv)) return "";
  return LineOf(read.file, it->second);
}

namespace {

// `text` as comment lines of at most `width` characters.
std::string Commented(const std::string& text, size_t width) {
  std::string out, line;
  std::istringstream words(text);
  for (std::string word; words >> word;) {
    if (!line.empty() && line.size() + 1 + word.size() > width) {
      out += "# " + line + "\n";
      line.clear();
    }
    line += (line.empty() ? "" : " ") + word;
  }
  if (!line.empty()) out += "# " + line + "\n";
  return out;
}

bool Numeric(const std::string& value) {
  return !value.empty() && std::all_of(value.begin(), value.end(),
                                       [](unsigned char c) { return std::isdigit(c) || c == '.'; });
}

}  // namespace

std::string SampleConfig(const CLI::App& app) {
  std::string out =
      "# txmqd configuration file: every option, commented out at its default.\n"
      "# Keys are txmqd's long flag names; uncomment a line to change it. A flag\n"
      "# given on the command line wins over this file. Use it with:\n"
      "#   txmqd --config /etc/txmq/txmqd.conf\n"
      "# Made by `txmqd --print-config`; a key txmqd does not know is an error.\n";
  for (const CLI::Option* option : app.get_options()) {
    const auto& names = option->get_lnames();
    if (names.empty() || NotConfigurable(names[0])) continue;
    out += "\n" + Commented(option->get_description(), 76);
    std::string value = option->get_default_str();
    if (option->get_items_expected_min() == 0 && option->get_type_size_max() <= 1 &&
        option->get_default_str().empty()) {
      value = "false";  // a flag: off unless given
    } else if (!value.empty() && !Numeric(value) && value != "true" && value != "false") {
      value = "\"" + value + "\"";
    }
    out += "# " + names[0] + " =" + (value.empty() ? "" : " " + value) + "\n";
  }
  return out;
}

}  // namespace txmq::broker
