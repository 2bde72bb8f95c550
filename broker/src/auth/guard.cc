#include "broker/src/auth/guard.h"

#include "broker/src/clients.h"
#include "protocol/src/log.h"
#include "protocol/src/message_codec.h"

namespace txmq::broker::auth {

namespace {

using E = wire::Envelope;

Status Denied(const Principal& p, const std::string& what, const std::string& right) {
  return Status::PermissionDenied("principal '" + p.name + "' may not " + what + " (" + right +
                                  ")");
}

std::string Quoted(const std::string& s) { return "'" + s + "'"; }

// Requests only an admin may make: txmqctl's commands beyond send and
// consume, reads included (they show other principals' messages).
bool IsAdminVerb(E::Which which) {
  switch (which) {
    case E::CREATE_TOPIC:
    case E::CHECK_NOW:
    case E::DLQ_RESEND:
    case E::LIST_TRANSACTIONS:
    case E::SHOW_TRANSACTION:
    case E::TOPIC_LIST:
    case E::TOPIC_SHOW:
    case E::SHOW_MESSAGE:
    case E::FIND_MESSAGES:
    case E::PEEK:
    case E::GROUP_LIST:
    case E::GROUP_SHOW:
    case E::DLQ_LIST:
    case E::DLQ_SHOW:
      return true;
    default:
      return false;
  }
}

const char* VerbName(E::Which which) {
  switch (which) {
    case E::CREATE_TOPIC:
      return "create topics";
    case E::CHECK_NOW:
      return "ask for transaction checks";
    case E::DLQ_RESEND:
      return "resend dead letters";
    case E::LIST_TRANSACTIONS:
    case E::SHOW_TRANSACTION:
      return "inspect transactions";
    case E::TOPIC_LIST:
    case E::TOPIC_SHOW:
      return "inspect topics";
    case E::SHOW_MESSAGE:
    case E::FIND_MESSAGES:
    case E::PEEK:
      return "inspect messages";
    case E::GROUP_LIST:
    case E::GROUP_SHOW:
      return "inspect consumer groups";
    case E::DLQ_LIST:
    case E::DLQ_SHOW:
      return "inspect dead letters";
    default:
      return "make this request";
  }
}

}  // namespace

void Guard::Enable(const AclHolder* acl) {
  acl_ = acl;
  Refresh();
}

bool Guard::Refresh() {
  if (acl_ == nullptr) return false;
  const uint64_t generation = acl_->generation();
  if (current_ && generation == generation_) return false;
  const bool changed = current_ != nullptr;
  current_ = acl_->Get();
  generation_ = generation;
  return changed;
}

const Principal* Guard::PrincipalOf(const std::string& key) const {
  return current_ ? current_->ByKey(key) : nullptr;
}

bool Guard::MayActFor(const std::string& key, const std::string& group) const {
  if (!enabled()) return true;
  const Principal* p = PrincipalOf(key);
  return p != nullptr && p->producer_groups.Matches(group);
}

bool Guard::MayKeepRegistration(const std::string& key, wire::Role role, bool checker,
                                const std::string& group) const {
  if (!enabled()) return true;
  const Principal* p = PrincipalOf(key);
  if (p == nullptr) return false;
  if (role == wire::Role::CONSUMER && !group.empty()) return p->consume.Matches(group);
  if (role == wire::Role::PRODUCER && checker) return p->producer_groups.Matches(group);
  return true;
}

Status Guard::Check(RequestContext& ctx, wire::Envelope::Reader env) {
  if (!enabled()) return Status::OK();
  const Principal* p = ctx.key.empty() ? nullptr : PrincipalOf(ctx.key);
  Status verdict;
  if (ctx.console()) {
    ctx.principal = &console_;
    verdict = CheckVerb(ctx, console_, env);
  } else if (ctx.key.empty()) {
    // ZAP admitted nothing without a key; refuse rather than trust it.
    verdict = Status::PermissionDenied("connection is not authenticated (no CURVE key)");
  } else if (p == nullptr) {
    verdict = Status::PermissionDenied("key " + ctx.key +
                                       " is not in the broker's ACL (any more); its requests "
                                       "are refused");
  } else if (ctx.client != nullptr && ctx.client->key != ctx.key) {
    verdict = Status::PermissionDenied("this connection registered client '" + ctx.client->id +
                                       "' under another principal");
  } else {
    ctx.principal = p;
    verdict = CheckVerb(ctx, *p, env);
  }
  if (!verdict.ok()) LogRefusal(ctx, verdict, IsAdminVerb(env.which()));
  return verdict;
}

Status Guard::NeedProducerGroup(RequestContext& ctx, const Principal& p, const std::string& tx_id,
                                const char* what) {
  const std::optional<std::string> group = group_of_tx_(tx_id);
  // An unknown transaction: the handler says NOT_FOUND, and changes nothing.
  if (!group) return Status::OK();
  if (p.producer_groups.Matches(*group)) return Status::OK();
  if (p.admin) {
    ctx.as_admin = true;
    return Status::OK();
  }
  return Denied(
      p,
      std::string(what) + " transaction " + Quoted(tx_id) + " of producer group " + Quoted(*group),
      "not in its producer_groups, and not admin");
}

Status Guard::CheckVerb(RequestContext& ctx, const Principal& p, wire::Envelope::Reader env) {
  switch (env.which()) {
    case E::HELLO: {
      auto hello = env.getHello();
      const std::string group = wire::ToString(hello.getGroup());
      if (hello.getRole() == wire::Role::CONSUMER && !group.empty() && !p.consume.Matches(group)) {
        return Denied(p, "consume as group " + Quoted(group), "not in its consume list");
      }
      if (hello.getRole() == wire::Role::PRODUCER && hello.getChecker() &&
          !p.producer_groups.Matches(group)) {
        return Denied(p, "answer the checks of producer group " + Quoted(group),
                      "not in its producer_groups");
      }
      return Status::OK();
    }
    case E::HEARTBEAT:
    case E::GOODBYE:
    case E::STATUS:
    // Like status: where the leader is and how far replicas are behind,
    // which every client's NOT_LEADER answers half tell anyway.
    case E::CLUSTER_STATUS:
      return Status::OK();
    case E::LIFECYCLE:
      // Admin only: the lifecycle service asks RequireAdmin (admin_auth.h)
      // before it looks at anything, and audits a refusal with its object.
      return Status::OK();
    case E::SEND: {
      const std::string topic = wire::ToString(env.getSend().getMessage().getTopic());
      if (p.produce.Matches(topic)) return Status::OK();
      return Denied(p, "send to topic " + Quoted(topic), "not in its produce list");
    }
    case E::ROUTE: {
      // A producer asks where its sends go, and places the topic as its
      // first send would. A consumer asks which broker groups serve the
      // topics it pulls; a route that creates nothing tells it no more
      // than its pulls and cluster status do.
      const std::string topic = wire::ToString(env.getRoute().getTopic());
      if (p.produce.Matches(topic)) return Status::OK();
      if (!env.getRoute().getCreate() && !p.consume.empty()) return Status::OK();
      if (p.admin) {
        ctx.as_admin = true;
        return Status::OK();
      }
      return Denied(p, "ask the route of topic " + Quoted(topic),
                    "not in its produce list, and not admin");
    }
    case E::SEND_HALF: {
      auto half = env.getSendHalf();
      const std::string group = wire::ToString(half.getProducerGroup());
      if (!p.producer_groups.Matches(group)) {
        return Denied(p, "send half messages for producer group " + Quoted(group),
                      "not in its producer_groups");
      }
      for (auto m : half.getMessages()) {
        const std::string topic = wire::ToString(m.getTopic());
        if (!p.produce.Matches(topic)) {
          return Denied(p, "send (in a transaction) to topic " + Quoted(topic),
                        "not in its produce list");
        }
      }
      for (auto end : half.getEnds()) {
        if (Status s = NeedProducerGroup(ctx, p, wire::ToString(end.getTransactionId()), "end");
            !s.ok()) {
          return s;
        }
      }
      return Status::OK();
    }
    case E::END_TRANSACTION:
      return NeedProducerGroup(ctx, p, wire::ToString(env.getEndTransaction().getTransactionId()),
                               "end");
    case E::CHECK_REPLY: {
      const std::string tx_id = wire::ToString(env.getCheckReply().getTransactionId());
      const std::optional<std::string> group = group_of_tx_(tx_id);
      if (!group || p.producer_groups.Matches(*group)) return Status::OK();
      return Denied(p, "answer a check of producer group " + Quoted(*group),
                    "not in its producer_groups");
    }
    case E::PULL:
    case E::ACK:
    case E::NACK:
    case E::EXTEND_LEASE: {
      const std::string group =
          wire::ToString(env.which() == E::PULL   ? env.getPull().getGroup()
                         : env.which() == E::ACK  ? env.getAck().getGroup()
                         : env.which() == E::NACK ? env.getNack().getGroup()
                                                  : env.getExtendLease().getGroup());
      if (p.consume.Matches(group)) return Status::OK();
      return Denied(p, "consume as group " + Quoted(group), "not in its consume list");
    }
    default:
      if (IsAdminVerb(env.which())) {
        if (p.admin) {
          ctx.as_admin = true;
          return Status::OK();
        }
        return Denied(p, VerbName(env.which()), "admin is false");
      }
      // A request kind this guard does not know: deny by default.
      return Denied(p, VerbName(env.which()), "unknown request");
  }
}

void Guard::LogRefusal(const RequestContext& ctx, const Status& why, bool admin_verb) {
  // The client id is the client's to choose: escaped, it cannot start a
  // line of its own in the audit trail or the log.
  const std::string client =
      ctx.client != nullptr ? AuditToken(ctx.client->id) : "an unregistered client";
  // An operator command refused is part of the audit trail, always.
  if (admin_verb) {
    Logger("audit")->warn("principal='{}' client={} action=refused reason='{}'",
                          AuditField(ctx.principal != nullptr ? ctx.principal->name : "?"), client,
                          AuditField(why.message()));
  }
  refusals_.Warn("refused a request of " + client + ": " + AuditField(why.message()));
}

}  // namespace txmq::broker::auth
