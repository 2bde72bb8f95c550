// Outbox::Add for a message whose reserved properties the library set (an
// inbox's compensation), which the public Add refuses.
#pragma once

#include <sqlite3.h>

#include "txmq/message.h"
#include "txmq/sqlite/outbox.h"
#include "txmq/status.h"

namespace txmq::sqlite {

Status AddStamped(Outbox& outbox, sqlite3* db, Message message);

}  // namespace txmq::sqlite
