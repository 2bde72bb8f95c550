// "unknown option '--brokr' (did you mean '--broker'?)" for a command line
// CLI11 refused. Alone, CLI11 lists the leftover words value first ("The
// following arguments were not expected: tcp://x --brokr"), which hides
// the typo; txmqd and txmqctl both print this instead.
//
// Header-only: the includer links CLI11.
#pragma once

#include <CLI/CLI.hpp>
#include <algorithm>
#include <string>
#include <vector>

#include "protocol/src/edit_distance.h"

namespace txmq {

// The first leftover word of `app` or of a command given under it that
// looks like a long option, named with the nearest long option of the
// commands given, or, when it names an argument given by position
// ("--topic orders"), saying so; "" when no leftover word looks like one.
inline std::string UnknownOption(const CLI::App& app) {
  std::vector<const CLI::App*> given = {&app};
  while (!given.back()->get_subcommands().empty()) {
    given.push_back(given.back()->get_subcommands().front());
  }
  std::vector<std::string> names, positional;
  for (const CLI::App* a : given) {
    for (const CLI::Option* o : a->get_options()) {
      for (const std::string& n : o->get_lnames()) names.push_back("--" + n);
      if (!o->nonpositional() && o->get_positional()) positional.push_back("--" + o->get_name());
    }
  }
  for (const CLI::App* a : given) {
    for (std::string word : a->remaining()) {
      if (word.rfind("--", 0) != 0 || word.size() == 2) continue;
      word = word.substr(0, word.find('='));
      if (std::find(positional.begin(), positional.end(), word) != positional.end()) {
        return "unknown option '" + word + "' (" + word.substr(2) +
               " is given by its position, without a flag)";
      }
      const std::string nearest = Nearest(word, names);
      return "unknown option '" + word + "'" +
             (nearest.empty() ? "" : " (did you mean '" + nearest + "'?)");
    }
  }
  return "";
}

}  // namespace txmq
