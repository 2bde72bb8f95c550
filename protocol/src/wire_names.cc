#include "protocol/src/wire_names.h"

namespace txmq::wire {

const char* TxStateName(TxState state) {
  switch (state) {
    case TxState::PREPARED:
      return "PREPARED";
    case TxState::COMMITTED:
      return "COMMITTED";
    case TxState::ROLLED_BACK:
      return "ROLLED_BACK";
  }
  return "?";
}

const char* CheckAnswerName(CheckAnswer answer) {
  switch (answer) {
    case CheckAnswer::NONE:
      return "none";
    case CheckAnswer::COMMIT:
      return "commit";
    case CheckAnswer::ROLLBACK:
      return "rollback";
    case CheckAnswer::UNKNOWN:
      return "unknown";
    case CheckAnswer::ERROR:
      return "error";
    case CheckAnswer::NO_ANSWER:
      return "no answer";
    case CheckAnswer::NO_PRODUCER:
      return "no producer";
  }
  return "?";
}

}  // namespace txmq::wire
