#include "broker/src/admin_auth.h"

#include <string>

#include "broker/src/auth/acl.h"

namespace txmq::broker {

Status RequireAdmin(const RequestContext& ctx, std::string_view action) {
  // Plaintext mode: no principals, every connection is trusted (README,
  // "Limits"). With CURVE the guard (auth/guard.h) lets no request through
  // without the principal of its connection, so a null one means plaintext.
  if (ctx.principal == nullptr) return Status::OK();
  if (ctx.principal->admin) return Status::OK();
  return Status::PermissionDenied("principal '" + ctx.principal->name + "' may not " +
                                  std::string(action) + " (admin is false)");
}

}  // namespace txmq::broker
