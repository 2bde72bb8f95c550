// Who may change the broker as an operator.
//
// Every state-changing operator request that goes through the lifecycle
// service (topic delete, group delete and reset, dead-letter purge) asks
// RequireAdmin first, before it looks at anything else, so that refusing
// is one decision in one place. Today every connection may (the broker has
// no authenticated principals yet: README, "Limits"); the ACL's admin
// right belongs here, checked against the principal of the request's
// connection (RequestContext), never against a name the request carries.
#pragma once

#include <string_view>

#include "broker/src/core.h"
#include "txmq/status.h"

namespace txmq::broker {

// OK, or the error to answer (and audit) when `ctx` may not do `action`
// ("topic-delete", "group-delete", "group-reset", "dlq-purge").
Status RequireAdmin(const RequestContext& ctx, std::string_view action);

}  // namespace txmq::broker
