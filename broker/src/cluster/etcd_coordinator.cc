// Coordinator calls as etcd 3.4 gateway JSON (etcdserverpb/rpc.proto,
// mvccpb/kv.proto, with proto field names):
//
//   range        {key, range_end?}          -> {header, kvs?: [KeyValue]}
//   put          {key, value, lease?}       -> {header}
//   deleterange  {key}                      -> {header, deleted?}
//   txn          {compare: [Compare], success: [RequestOp], failure: [RequestOp]}
//                                           -> {header, succeeded?, responses?}
//   Compare      {key, target: MOD|CREATE|VALUE, result: EQUAL,
//                 mod_revision | create_revision | value}
//   RequestOp    {request_put: {...}} | {request_delete_range: {...}}
//   lease/grant      {TTL}  -> {header, ID, TTL, error?}
//   lease/keepalive  {ID}   -> {"result": {header, ID, TTL?}}  (a stream; TTL
//                                absent or 0 when the lease is gone)
//   lease/revoke     {ID}   -> {header}; gRPC NOT_FOUND when it is gone
//   header       {revision, ...};  KeyValue {key, value?, create_revision,
//                 mod_revision, version, lease?}
//
// Keys and values are base64; int64 fields are sent and received as JSON
// strings (a lease id does not fit a double); a field at its zero value is
// left out of an answer (succeeded false, an empty value, lease 0).
#include "broker/src/cluster/etcd_coordinator.h"

#include <atomic>

#include <charconv>
#include <stdexcept>

#include "broker/src/cluster/etcd_http.h"

namespace txmq::cluster {
namespace {

using nlohmann::json;

int64_t Int(const json& object, const char* field) {
  auto it = object.find(field);
  if (it == object.end() || it->is_null()) return 0;
  if (it->is_number_integer()) return it->get<int64_t>();
  const std::string& text = it->get_ref<const std::string&>();
  int64_t v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size()) {
    throw std::invalid_argument(std::string("field '") + field + "' is not an int64: " + text);
  }
  return v;
}

std::string Bytes(const json& object, const char* field) {
  auto it = object.find(field);
  if (it == object.end() || it->is_null()) return {};
  return etcd::Base64Decode(it->get_ref<const std::string&>());
}

Revision HeaderRevision(const json& answer) {
  auto it = answer.find("header");
  if (it == answer.end()) throw std::invalid_argument("no header");
  return Int(*it, "revision");
}

// The smallest key after every key that starts with `prefix`.
std::string PrefixEnd(std::string prefix) {
  while (!prefix.empty()) {
    auto& last = reinterpret_cast<unsigned char&>(prefix.back());
    if (last < 0xff) {
      ++last;
      return prefix;
    }
    prefix.pop_back();
  }
  return std::string(1, '\0');  // etcd: every key from `key` on
}

json PutOp(const WriteOp& op) {
  json put = {{"key", etcd::Base64Encode(op.key)}, {"value", etcd::Base64Encode(op.value)}};
  if (op.lease != 0) put["lease"] = std::to_string(op.lease);
  return put;
}

json RequestOps(const std::vector<WriteOp>& ops) {
  json out = json::array();
  for (const WriteOp& op : ops) {
    if (op.kind == WriteOp::Kind::kPut) {
      out.push_back({{"request_put", PutOp(op)}});
    } else {
      out.push_back({{"request_delete_range", {{"key", etcd::Base64Encode(op.key)}}}});
    }
  }
  return out;
}

json CompareJson(const Compare& c) {
  json out = {{"key", etcd::Base64Encode(c.key)}, {"result", "EQUAL"}};
  switch (c.target) {
    case Compare::Target::kModRevision:
      out["target"] = "MOD";
      out["mod_revision"] = std::to_string(c.revision);
      break;
    case Compare::Target::kCreateRevision:
      out["target"] = "CREATE";
      out["create_revision"] = std::to_string(c.revision);
      break;
    case Compare::Target::kValue:
      out["target"] = "VALUE";
      out["value"] = etcd::Base64Encode(c.value);
      break;
  }
  return out;
}

class EtcdCoordinator final : public Coordinator {
 public:
  explicit EtcdCoordinator(EtcdOptions options) : options_(std::move(options)) {}

  Result<Lease> GrantLease(std::chrono::seconds ttl) override {
    if (ttl < std::chrono::seconds(1)) {
      return Status::InvalidArgument("lease TTL " + std::to_string(ttl.count()) +
                                     " s: must be at least 1 s");
    }
    return Call<Lease>("lease grant", "/v3/lease/grant", {{"TTL", std::to_string(ttl.count())}},
                       [&](const json& a) -> Result<Lease> {
                         std::string error = a.value("error", "");
                         if (!error.empty()) return Failed("lease grant", error);
                         return Lease{Int(a, "ID"), std::chrono::seconds(Int(a, "TTL"))};
                       });
  }

  Result<std::chrono::seconds> KeepAlive(LeaseId lease) override {
    return Call<std::chrono::seconds>(
        "lease keep-alive", "/v3/lease/keepalive", {{"ID", std::to_string(lease)}},
        [&](const json& a) -> Result<std::chrono::seconds> {
          if (auto e = a.find("error"); e != a.end()) {
            return Failed("lease keep-alive", e->dump());
          }
          int64_t ttl = Int(a.at("result"), "TTL");
          if (ttl <= 0) {
            return Status::NotFound(Prefix("lease keep-alive") + "lease " + std::to_string(lease) +
                                    " expired or was revoked");
          }
          return std::chrono::seconds(ttl);
        });
  }

  Status RevokeLease(LeaseId lease) override {
    auto r = Call<bool>("lease revoke", "/v3/lease/revoke", {{"ID", std::to_string(lease)}},
                        [](const json&) -> Result<bool> { return true; });
    return r.ok() ? Status::OK() : r.status();
  }

  Result<ReadResult> Get(const std::string& key) override {
    return Range({{"key", etcd::Base64Encode(key)}});
  }

  Result<ReadResult> GetPrefix(const std::string& prefix) override {
    if (prefix.empty()) return Status::InvalidArgument("GetPrefix: the prefix is empty");
    return Range({{"key", etcd::Base64Encode(prefix)},
                  {"range_end", etcd::Base64Encode(PrefixEnd(prefix))}});
  }

  Result<Revision> Put(const std::string& key, const std::string& value, LeaseId lease) override {
    return Call<Revision>("put", "/v3/kv/put", PutOp(WriteOp::Put(key, value, lease)),
                          [](const json& a) -> Result<Revision> { return HeaderRevision(a); });
  }

  Result<Revision> Delete(const std::string& key) override {
    return Call<Revision>("delete", "/v3/kv/deleterange", {{"key", etcd::Base64Encode(key)}},
                          [](const json& a) -> Result<Revision> { return HeaderRevision(a); });
  }

  Result<TxnResult> Commit(const Txn& txn) override {
    json compares = json::array();
    for (const Compare& c : txn.compares) compares.push_back(CompareJson(c));
    json request = {{"compare", std::move(compares)},
                    {"success", RequestOps(txn.on_success)},
                    {"failure", RequestOps(txn.on_failure)}};
    return Call<TxnResult>("txn", "/v3/kv/txn", request, [](const json& a) -> Result<TxnResult> {
      return TxnResult{a.value("succeeded", false), HeaderRevision(a)};
    });
  }

 private:
  std::string Prefix(const char* call) const {
    return "etcd at " + options_.endpoints[current_.load() % options_.endpoints.size()] + ": " +
           call + ": ";
  }
  Status Failed(const char* call, const std::string& what) const {
    return Status::Internal(Prefix(call) + "etcd says: " + what);
  }

  Result<ReadResult> Range(const json& request) {
    return Call<ReadResult>("range", "/v3/kv/range", request, [](const json& a) {
      ReadResult r;
      r.revision = HeaderRevision(a);
      if (auto kvs = a.find("kvs"); kvs != a.end()) {
        for (const json& kv : *kvs) {
          r.kvs.push_back(KeyValue{Bytes(kv, "key"), Bytes(kv, "value"), Int(kv, "create_revision"),
                                   Int(kv, "mod_revision"), Int(kv, "version"), Int(kv, "lease")});
        }
      }
      return Result<ReadResult>(std::move(r));
    });
  }

  // Posts and decodes; an answer of the wrong shape is kCorruption.
  template <typename T, typename Decode>
  Result<T> Call(const char* call, std::string_view path, const json& request, Decode decode) {
    const size_t n = options_.endpoints.size();
    const size_t first = current_.load();
    Result<json> answer = Status::Unavailable("no etcd endpoint");
    for (size_t attempt = 0; attempt < n; ++attempt) {
      const size_t at = (first + attempt) % n;
      bool connected = false;
      answer = etcd::Post(options_.endpoints[at], options_, call, path, request, &connected);
      if (answer.ok()) {
        current_.store(at);
        break;
      }
      if (connected) {
        // Reached, and it failed: the request may have been applied, so it
        // is not sent again. A member without a leader or an answer in
        // time is not asked first next time.
        const StatusCode code = answer.status().code();
        if (code == StatusCode::kUnavailable || code == StatusCode::kTimeout) {
          current_.store((at + 1) % n);
        }
        break;
      }
      current_.store((at + 1) % n);  // nothing was sent: the next member
    }
    if (!answer.ok()) return answer.status();
    try {
      if (!answer->is_object()) throw std::invalid_argument("not a JSON object");
      return decode(*answer);
    } catch (const std::exception& e) {
      return Status::Corruption(Prefix(call) + "unexpected answer (" + e.what() +
                                "): " + answer->dump().substr(0, 200));
    }
  }

  const EtcdOptions options_;
  // The member to ask first (an index into options_.endpoints).
  std::atomic<size_t> current_{0};
};

}  // namespace

Result<std::unique_ptr<Coordinator>> OpenEtcdCoordinator(const EtcdOptions& options) {
  if (options.endpoints.empty()) return Status::InvalidArgument("etcd: no endpoint given");
  for (const std::string& endpoint : options.endpoints) {
    if (Status s = etcd::CheckEndpoint(endpoint); !s.ok()) return s;
  }
  if (options.connect_timeout <= std::chrono::milliseconds(0) ||
      options.request_timeout <= std::chrono::milliseconds(0)) {
    return Status::InvalidArgument("etcd connect_timeout and request_timeout must be positive");
  }
  return std::unique_ptr<Coordinator>(std::make_unique<EtcdCoordinator>(options));
}

}  // namespace txmq::cluster
