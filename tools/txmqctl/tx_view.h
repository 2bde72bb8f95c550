// How transactions are shown by the tx commands: names of states and check
// answers, JSON, and the "tx show" block that dry runs print too.
#pragma once

#include <nlohmann/json.hpp>
#include <ostream>
#include <string>

#include "protocol/src/wire_names.h"
#include "protocol/txmq.capnp.h"

namespace txmq::ctl {

class Ctl;

using wire::CheckAnswerName;
using wire::TxStateName;
// "pending" or "stuck" while open, else the final state.
std::string TxCondition(wire::TxSummary::Reader s);

nlohmann::json TxSummaryJson(wire::TxSummary::Reader s);

// The first topic (and key) of a transaction, "+N" when it has more.
std::string FirstTopic(wire::TxSummary::Reader s);
std::string FirstKey(wire::TxSummary::Reader s);

// Everything about one transaction for a person: fields, then its
// messages (with body previews while they are still stored as halves).
void PrintTransaction(std::ostream& out, wire::ShowTransactionOk::Reader tx);
nlohmann::json TransactionJson(wire::ShowTransactionOk::Reader tx);

}  // namespace txmq::ctl
