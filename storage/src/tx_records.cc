#include "storage/src/tx_records.h"

#include "storage/src/coding.h"

namespace txmq::storage {
namespace {
constexpr uint8_t kVersion1 = 1;
constexpr uint8_t kVersion2 = 2;  // + no_producer_checks
constexpr uint8_t kVersion3 = 3;  // + principal

bool GetString(std::string_view* in, std::string* out) {
  std::string_view v;
  if (!GetLengthPrefixed(in, &v)) return false;
  out->assign(v);
  return true;
}

bool GetInt64(std::string_view* in, int64_t* out) {
  uint64_t v;
  if (!GetFixed64(in, &v)) return false;
  *out = static_cast<int64_t>(v);
  return true;
}
}  // namespace

std::string EncodeTx(const TxRecord& tx) {
  std::string out;
  out.push_back(static_cast<char>(kVersion3));
  out.push_back(static_cast<char>(tx.state));
  out.push_back(tx.stuck ? 1 : 0);
  PutLengthPrefixed(&out, tx.group);
  PutLengthPrefixed(&out, tx.instance);
  PutFixed64(&out, static_cast<uint64_t>(tx.born_ms));
  PutVarint64(&out, tx.check_count);
  PutFixed64(&out, static_cast<uint64_t>(tx.last_check_ms));
  PutFixed64(&out, static_cast<uint64_t>(tx.next_check_ms));
  out.push_back(static_cast<char>(tx.last_answer));
  PutLengthPrefixed(&out, tx.last_error);
  PutFixed64(&out, static_cast<uint64_t>(tx.resolved_ms));
  PutLengthPrefixed(&out, tx.resolved_by);
  PutVarint64(&out, tx.messages.size());
  for (const auto& m : tx.messages) {
    PutLengthPrefixed(&out, m.id);
    PutLengthPrefixed(&out, m.topic);
    PutLengthPrefixed(&out, m.key);
  }
  PutVarint64(&out, tx.no_producer_checks);
  PutLengthPrefixed(&out, tx.principal);
  return out;
}

bool DecodeTx(std::string_view in, TxRecord* tx) {
  uint8_t version, state, stuck, answer;
  uint64_t nmsg;
  if (!GetByte(&in, &version) || version < kVersion1 || version > kVersion3 ||
      !GetByte(&in, &state) || state > 2 || !GetByte(&in, &stuck) || !GetString(&in, &tx->group) ||
      !GetString(&in, &tx->instance) || !GetInt64(&in, &tx->born_ms) ||
      !GetVarint32(&in, &tx->check_count) || !GetInt64(&in, &tx->last_check_ms) ||
      !GetInt64(&in, &tx->next_check_ms) || !GetByte(&in, &answer) || answer > 6 ||
      !GetString(&in, &tx->last_error) || !GetInt64(&in, &tx->resolved_ms) ||
      !GetString(&in, &tx->resolved_by) || !GetVarint64(&in, &nmsg) || nmsg > in.size()) {
    return false;
  }
  tx->state = static_cast<TxStateCode>(state);
  tx->stuck = stuck != 0;
  tx->last_answer = static_cast<CheckAnswerCode>(answer);
  tx->messages.resize(nmsg);
  for (auto& m : tx->messages) {
    if (!GetString(&in, &m.id) || !GetString(&in, &m.topic) || !GetString(&in, &m.key)) {
      return false;
    }
  }
  tx->no_producer_checks = 0;
  if (version >= kVersion2 && !GetVarint32(&in, &tx->no_producer_checks)) return false;
  tx->principal.clear();
  if (version >= kVersion3 && !GetString(&in, &tx->principal)) return false;
  return in.empty();
}

}  // namespace txmq::storage
