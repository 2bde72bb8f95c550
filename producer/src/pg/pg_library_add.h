// Outbox::Add for a message whose reserved properties the library set (an
// inbox's compensation), which the public Add refuses.
#pragma once

#include <libpq-fe.h>

#include "txmq/message.h"
#include "txmq/pg/outbox.h"
#include "txmq/status.h"

namespace txmq::pg {

Status AddStamped(Outbox& outbox, PGconn* conn, Message message);

}  // namespace txmq::pg
