#include "broker/src/admin_auth.h"

namespace txmq::broker {

Status RequireAdmin(const RequestContext&, std::string_view) {
  // No principals yet: every connection is trusted (see the header).
  return Status::OK();
}

}  // namespace txmq::broker
