// One JSON call to etcd's gRPC gateway, with bounded time, and the byte
// encodings the gateway uses. Private to etcd_coordinator.cc.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "broker/src/cluster/etcd_coordinator.h"

namespace txmq::cluster::etcd {

// POSTs `request` to `endpoint` + `path` and returns the answer's JSON.
// `call` names the operation in error messages ("txn", "range"). Errors as
// described in coordinator.h; a non-200 answer maps etcd's gRPC code
// (NotFound -> kNotFound, Unavailable -> kUnavailable, ...). `*connected`
// says whether a connection was made: when not, nothing was sent.
// Thread safety: any thread; each call uses its own connection.
Result<nlohmann::json> Post(const std::string& endpoint, const EtcdOptions& options,
                            const char* call, std::string_view path, const nlohmann::json& request,
                            bool* connected);

// Keys and values are `bytes` in etcd's protos: base64 (RFC 4648, padded)
// in the gateway's JSON.
std::string Base64Encode(std::string_view bytes);
// Throws std::invalid_argument on text that is not base64.
std::string Base64Decode(std::string_view text);

// "http://127.0.0.1:2379" -> ok; anything else names what is wrong.
Status CheckEndpoint(const std::string& endpoint);

}  // namespace txmq::cluster::etcd
