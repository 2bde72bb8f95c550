// The compensation handler both SQL backends run inside their inbox's
// transaction (pg_compensation.cc, sqlite_compensation.cc): parse, ask the
// database about the original (origin_check.h), then undo, or record the
// compensation as skipped with why. Header-only: it needs the consumer's
// types, which the producer library (where origin_check.cc lives) does not.
#pragma once

#include <functional>
#include <string>

#include "producer/src/sql/origin_check.h"
#include "protocol/src/log.h"
#include "txmq/compensation.h"

namespace txmq::sql {

// The inbox's dedup key of a compensation: one undo per original, however
// often (or by however many consumers) it was compensated.
inline std::string CompensationDedupKey(const Received& m) {
  auto c = CompensationFromMessage(m);
  return "compensation/" + (c.ok() ? c->original_id : m.id);
}

// `mark_skipped(note)` turns the inbox's record of this compensation into
// 'S' in the open transaction; `undo` is the user's handler.
inline ConsumeResult RunCompensation(
    const Received& m, const CompensationOptions& options, OriginTables& tables,
    const std::function<Status(const std::string& note)>& mark_skipped,
    const std::function<ConsumeResult(const Compensation&)>& undo) {
  auto log = Logger("inbox");
  auto c = CompensationFromMessage(m);
  if (!c.ok()) {
    // Not ours to understand; acknowledge so it does not loop.
    log->error("{}; ignored", c.status().message());
    return ConsumeResult::Success();
  }
  if (options.only_recorded) {
    std::string why;
    auto origin =
        CheckOrigin(tables, c->original_id, c->transaction_id, options.record_horizon, &why);
    if (!origin.ok()) {
      log->warn("compensation {} for {}: the database failed: {}; will retry", m.id, c->original_id,
                origin.status().ToString());
      return ConsumeResult::RetryLater();
    }
    switch (*origin) {
      case Origin::kCommitted:
        break;
      case Origin::kUndecided:
        log->warn("compensation {} for {}: {}; will retry", m.id, c->original_id, why);
        return ConsumeResult::RetryLater();
      case Origin::kNotCommitted: {
        log->warn("compensation {} for {} from '{}' ({}) not undone: {}", m.id, c->original_id,
                  c->consumer_group, c->reason, why);
        if (Status s = mark_skipped("not undone: " + why); !s.ok()) {
          log->warn("compensation {}: recording it as skipped failed: {}; will retry", m.id,
                    s.ToString());
          return ConsumeResult::RetryLater();
        }
        return ConsumeResult::Success();
      }
    }
  }
  return undo(*c);
}

}  // namespace txmq::sql
