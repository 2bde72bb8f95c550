// The broker's effective settings as an operator reads them: one list, in
// txmqd --help order, for the start-up log and for txmqctl status.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "txmq/broker.h"

namespace txmq::broker {

// (name, value) for every BrokerOptions field. Names are txmqd's long flag
// names without "--" (fields no flag sets use the same style, e.g.
// "max-long-poll"); values are in flag syntax ("30s", "72h", "sync"), so a
// line can be pasted back into a config file.
std::vector<std::pair<std::string, std::string>> EffectiveSettings(const BrokerOptions& options);

// Settings as an aligned block, one "  name  value" line each (each line
// starts with a newline, so the block follows a heading).
std::string SettingsBlock(const std::vector<std::pair<std::string, std::string>>& settings);

}  // namespace txmq::broker
