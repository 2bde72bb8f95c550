// How transactions are shown by the tx commands: names of states and check
// answers, JSON, and the "tx show" block that dry runs print too.
#pragma once

#include <nlohmann/json.hpp>
#include <ostream>
#include <string>

#include "protocol/txmq.capnp.h"

namespace txmq::ctl {

class Ctl;

// "PREPARED", "COMMITTED", "ROLLED_BACK": the words the broker's own
// messages use ("already COMMITTED").
const char* TxStateName(wire::TxState state);
// "none", "commit", ..., "no answer", "no producer".
const char* CheckAnswerName(wire::CheckAnswer answer);
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
