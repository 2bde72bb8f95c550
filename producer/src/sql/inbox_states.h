// The one-letter states of txmq_inbox rows (pg_schema.h, sqlite_schema.h)
// and the inbox's record states they stand for; shared by both SQL inboxes.
#pragma once

#include <optional>
#include <string_view>

#include "txmq/inbox.h"

namespace txmq::sql {

inline const char* StateCode(InboxState state) {
  switch (state) {
    case InboxState::kProcessed:
      return "P";
    case InboxState::kCompensated:
      return "X";
    case InboxState::kUndone:
      return "U";
    case InboxState::kFenced:
      return "F";
    case InboxState::kSkipped:
      return "S";
  }
  return "?";
}

// nullopt for a letter this txmq does not know (a newer one wrote it).
inline std::optional<InboxState> StateFromCode(std::string_view code) {
  for (InboxState s : {InboxState::kProcessed, InboxState::kCompensated, InboxState::kUndone,
                       InboxState::kFenced, InboxState::kSkipped}) {
    if (code == StateCode(s)) return s;
  }
  return std::nullopt;
}

}  // namespace txmq::sql
