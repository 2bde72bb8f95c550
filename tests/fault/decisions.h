// The copier's decisions file ("<message id> COMMIT|ROLLBACK" lines): its
// local database, read by checkers in the tool and in the test.
#pragma once

#include <fstream>
#include <map>
#include <sstream>
#include <string>

#include "txmq/transaction_producer.h"

namespace txmq::testing {

// message id -> decision. A torn line (a writer killed mid-write) counts as
// no decision: each copier first ends whatever line it finds unfinished,
// so its own first line never joins a torn one.
inline std::map<std::string, TxState> ReadDecisions(const std::string& path) {
  std::map<std::string, TxState> out;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string id, decision;
    if (!(fields >> id >> decision)) continue;
    if (decision == "COMMIT") out[id] = TxState::kCommit;
    if (decision == "ROLLBACK") out[id] = TxState::kRollback;
  }
  return out;
}

}  // namespace txmq::testing
