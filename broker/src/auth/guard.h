// Who may do what: the one place that maps each request to the right it
// needs and checks it against the principal of the connection it came on.
// Server::Dispatch asks Check() before any handler runs, so a refused
// request changes nothing and handlers never see one.
//
// The principal comes from the connection: the ZAP handler admitted it
// with its CURVE key as user id, and libzmq stamps that on every message
// ("User-Id"). No request field names it; an --operator name is a label
// in the audit line, never a right.
//
//   right            requests
//   produce T        send to topic T (auto-creating T), each message of a half
//   producer group G send a half for G, end a transaction of G (alone or
//                    carried on a half), answer its checks, say hello as a
//                    checker of G (only such connections are sent G's checks)
//   consume G        pull, ack, nack, extend a lease as group G; hello as a
//                    consumer of G
//   admin            create a topic, end any transaction, check now, resend
//                    dead letters, and every read of txmqctl (topics,
//                    messages, groups, transactions, dead letters); topic
//                    and group delete, group reset and dead-letter purge
//                    (lifecycle) are let through here and refused by
//                    RequireAdmin (admin_auth.h), which audits the object
//   (any principal)  hello as a plain producer or admin client, heartbeat,
//                    goodbye, status
//
// A request from the HTTP console (RequestContext::console(), through the
// operator mailbox) has no connection and no key: it runs as the built-in
// principal "http-console" (console_principal()), an admin with no
// producer, consumer or producer-group rights. Whoever holds the HTTP
// token may act as it (README, "The web console").
//
// A connection keeps the key it said hello with: a request on that
// connection under another key is refused. When the ACL is reloaded, keys
// it no longer names are refused from their next request on.
//
// Without an ACL (plaintext mode) everything is allowed and Check() costs
// one branch.
//
// Thread safety: core thread only (it reads the ACL holder, which is safe
// from any thread).
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "broker/src/auth/acl.h"
#include "broker/src/auth/refusal_log.h"
#include "broker/src/core.h"
#include "protocol/src/util.h"
#include "protocol/txmq.capnp.h"

namespace txmq::broker::auth {

class Guard {
 public:
  // The producer group of a transaction (open or recently ended), nullopt
  // when the broker does not know it.
  using GroupOfTx = std::function<std::optional<std::string>(const std::string& tx_id)>;

  explicit Guard(GroupOfTx group_of_tx) : group_of_tx_(std::move(group_of_tx)) {
    console_.name = "http-console";
    console_.admin = true;
  }

  // Turns checking on; `acl` must outlive the guard. Before: plaintext.
  void Enable(const AclHolder* acl);
  bool enabled() const { return acl_ != nullptr; }
  // The ACL generation (AclHolder::generation) in force here.
  uint64_t generation() const { return generation_; }

  // Picks up a reloaded ACL; true when it changed since the last call.
  // Call once per batch of requests: principals found by one Check stay
  // valid until the next Refresh.
  bool Refresh();

  // Who a console request is.
  const Principal& console_principal() const { return console_; }
  // The principal of a CURVE key under the ACL in force; null if none.
  const Principal* PrincipalOf(const std::string& key) const;
  // Whether the connection `key` may receive group G's checks.
  bool MayActFor(const std::string& key, const std::string& group) const;
  // Whether a client registered with `key`, `role` and `group` still may.
  bool MayKeepRegistration(const std::string& key, wire::Role role, bool checker,
                           const std::string& group) const;

  // Fills ctx.principal and ctx.as_admin; OK or PERMISSION_DENIED naming
  // the principal, the request and the right it lacks.
  Status Check(RequestContext& ctx, wire::Envelope::Reader env);
  // What Check does with a refusal: a rate-limited warning, and for an
  // operator request an audit line (every field the client chose escaped).
  void LogRefusal(const RequestContext& ctx, const Status& why, bool admin_verb);

 private:
  Status CheckVerb(RequestContext& ctx, const Principal& p, wire::Envelope::Reader env);
  Status NeedProducerGroup(RequestContext& ctx, const Principal& p, const std::string& tx_id,
                           const char* what);

  GroupOfTx group_of_tx_;
  Principal console_;  // set once, by the constructor
  const AclHolder* acl_ = nullptr;
  std::shared_ptr<const Acl> current_;
  uint64_t generation_ = 0;
  RefusalLog refusals_;
};

}  // namespace txmq::broker::auth
