#include "protocol/src/curve_keys.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace txmq::curve {

namespace {

std::string Trim(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && (s[b] == ' ' || s[b] == '\t' || s[b] == '\r')) ++b;
  while (e > b && (s[e - 1] == ' ' || s[e - 1] == '\t' || s[e - 1] == '\r')) --e;
  return std::string(s.substr(b, e - b));
}

// Creates `path` with `mode` and writes `text`; fails if it exists.
Status WriteNewFile(const std::string& path, const std::string& text, mode_t mode) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0) {
    if (errno == EEXIST) {
      return Status::Conflict(path + " exists; refusing to overwrite a key (move it away first)");
    }
    return Status::Unavailable("cannot create " + path + ": " + std::strerror(errno));
  }
  // The umask may only have narrowed the mode; say it exactly.
  Status result;
  if (::fchmod(fd, mode) != 0) {
    result = Status::Unavailable("cannot set the mode of " + path + ": " + std::strerror(errno));
  }
  size_t done = 0;
  while (result.ok() && done < text.size()) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) result = Status::Unavailable("cannot write " + path + ": " + std::strerror(errno));
    if (n > 0) done += static_cast<size_t>(n);
  }
  if (result.ok() && ::fsync(fd) != 0) {
    result = Status::Unavailable("cannot sync " + path + ": " + std::strerror(errno));
  }
  ::close(fd);
  if (!result.ok()) ::unlink(path.c_str());
  return result;
}

}  // namespace

bool Available() { return zmq_has("curve") != 0; }

Result<KeyPair> NewKeyPair() {
  char pub[kZ85KeyLength + 1] = {};
  char sec[kZ85KeyLength + 1] = {};
  if (zmq_curve_keypair(pub, sec) != 0) {
    return Status::FailedPrecondition(std::string("cannot make a CURVE key pair: ") +
                                      zmq_strerror(zmq_errno()) +
                                      " (is libzmq built with libsodium?)");
  }
  return KeyPair{pub, sec};
}

Result<std::string> PublicKeyOf(const std::string& secret_key) {
  if (Status s = CheckKey("secret key", secret_key); !s.ok()) return s;
  char pub[kZ85KeyLength + 1] = {};
  if (zmq_curve_public(pub, secret_key.c_str()) != 0) {
    return Status::FailedPrecondition(std::string("cannot derive a CURVE public key: ") +
                                      zmq_strerror(zmq_errno()));
  }
  return std::string(pub);
}

Status CheckKey(std::string_view what, std::string_view key) {
  uint8_t raw[32];
  if (key.size() != kZ85KeyLength || zmq_z85_decode(raw, std::string(key).c_str()) == nullptr) {
    return Status::InvalidArgument(std::string(what) + " '" + std::string(key.substr(0, 48)) +
                                   (key.size() > 48 ? "..." : "") +
                                   "' is not a CURVE key: expected 40 Z85 characters "
                                   "(as txmqctl keygen writes them)");
  }
  return Status::OK();
}

std::string EncodeKey(std::string_view raw32) {
  if (raw32.size() != 32) return "";
  char out[kZ85KeyLength + 1] = {};
  zmq_z85_encode(out, reinterpret_cast<const uint8_t*>(raw32.data()), 32);
  return out;
}

Result<std::string> ReadKeyFile(const std::string& path, std::string_view what) {
  std::ifstream in(path);
  if (!in) {
    return Status::InvalidArgument(std::string(what) + " " + path +
                                   ": cannot read it: " + std::strerror(errno));
  }
  std::string key, line;
  int lines = 0;
  while (std::getline(in, line)) {
    const std::string text = Trim(line);
    if (text.empty() || text[0] == '#') continue;
    ++lines;
    key = text;
  }
  if (lines != 1) {
    return Status::InvalidArgument(std::string(what) + " " + path +
                                   ": expected exactly one key line (40 Z85 characters), found " +
                                   std::to_string(lines));
  }
  if (Status s = CheckKey(std::string(what) + " " + path, key); !s.ok()) return s;
  return key;
}

Status WriteKeyPair(const std::string& name, const KeyPair& pair) {
  const std::string secret_path = name + ".key", public_path = name + ".pub";
  struct stat st;
  for (const std::string& p : {secret_path, public_path}) {
    if (::stat(p.c_str(), &st) == 0) {
      return Status::Conflict(p + " exists; refusing to overwrite a key (move it away first)");
    }
  }
  if (Status s = WriteNewFile(secret_path, pair.secret_key + "\n", 0600); !s.ok()) return s;
  if (Status s = WriteNewFile(public_path, pair.public_key + "\n", 0644); !s.ok()) {
    ::unlink(secret_path.c_str());
    return s;
  }
  return Status::OK();
}

Result<ClientKeys> LoadClientKeys(const std::string& curve_key_file,
                                  const std::string& server_key_file, std::string_view curve_flag,
                                  std::string_view server_flag) {
  if (curve_key_file.empty() && server_key_file.empty()) return ClientKeys{};
  if (curve_key_file.empty() || server_key_file.empty()) {
    return Status::InvalidArgument(
        std::string(curve_key_file.empty() ? server_flag : curve_flag) + " is set but " +
        std::string(curve_key_file.empty() ? curve_flag : server_flag) +
        " is not: CURVE needs both (this client's secret key and the broker's public key)");
  }
  if (!Available()) {
    return Status::FailedPrecondition("this libzmq has no CURVE support (built without libsodium)");
  }
  ClientKeys keys;
  auto secret = ReadKeyFile(curve_key_file, curve_flag);
  if (!secret.ok()) return secret.status();
  auto server = ReadKeyFile(server_key_file, server_flag);
  if (!server.ok()) return server.status();
  auto pub = PublicKeyOf(*secret);
  if (!pub.ok()) return pub.status();
  keys.secret_key = *secret;
  keys.public_key = *pub;
  keys.server_key = *server;
  return keys;
}

}  // namespace txmq::curve
