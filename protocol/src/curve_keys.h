// CURVE keys (ZeroMQ's CurveZMQ, RFC 26) as txmq keeps them: Z85 text of
// 40 characters for a 32-byte key, one key a file.
//
//   NAME.key  the secret key, one line, mode 0600 (txmqctl keygen NAME)
//   NAME.pub  the public key, one line: what goes into the broker's ACL
//             ("public_key") or a client's --server-key
//
// A file may hold blank lines and '#' comments around its one key line.
//
// Thread safety: free functions on values; safe from any thread.
#pragma once

#include <string>
#include <string_view>

#include "txmq/status.h"

namespace txmq::curve {

inline constexpr size_t kZ85KeyLength = 40;

struct KeyPair {
  std::string public_key;  // Z85
  std::string secret_key;  // Z85
};

// True when this libzmq was built with CURVE (libsodium).
bool Available();

// A fresh key pair from the kernel's randomness.
Result<KeyPair> NewKeyPair();

// The public key that belongs to `secret_key` (both Z85).
Result<std::string> PublicKeyOf(const std::string& secret_key);

// OK when `key` is 40 Z85 characters that decode to 32 bytes; else
// INVALID_ARGUMENT naming `what` and the rule.
Status CheckKey(std::string_view what, std::string_view key);

// The 32 raw bytes of a Z85 key as Z85 again (canonical form), or from raw
// bytes (a ZAP request carries the client's key raw).
std::string EncodeKey(std::string_view raw32);

// Reads the one key of `path`; `what` names it in errors ("--curve-key").
Result<std::string> ReadKeyFile(const std::string& path, std::string_view what);

// Writes NAME.key (mode 0600) and NAME.pub for `pair`; refuses to
// overwrite either file. `name` may carry a directory.
Status WriteKeyPair(const std::string& name, const KeyPair& pair);

// What a client needs to talk CURVE: its own pair and the broker's public
// key. Empty when the client talks plaintext.
struct ClientKeys {
  std::string public_key;
  std::string secret_key;
  std::string server_key;
  bool enabled() const { return !secret_key.empty(); }
};

// From a client's --curve-key FILE (its secret key; the public key is
// derived) and --server-key FILE (the broker's public key). Both empty:
// plaintext. One without the other: INVALID_ARGUMENT. `curve_flag` and
// `server_flag` name the options in errors.
Result<ClientKeys> LoadClientKeys(const std::string& curve_key_file,
                                  const std::string& server_key_file,
                                  std::string_view curve_flag = "--curve-key",
                                  std::string_view server_flag = "--server-key");

}  // namespace txmq::curve
