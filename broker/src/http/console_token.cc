#include "broker/src/http/console_token.h"

#include <fcntl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace txmq::broker::http {

Result<ConsoleToken> ReadConsoleToken(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    return Status::InvalidArgument("--http-token-file " + path +
                                   ": cannot read it: " + std::strerror(errno));
  }
  std::stringstream text;
  text << in.rdbuf();
  std::string secret = text.str();
  const auto first = secret.find_first_not_of(" \t\r\n");
  const auto last = secret.find_last_not_of(" \t\r\n");
  secret = first == std::string::npos ? "" : secret.substr(first, last - first + 1);
  if (secret.size() < kMinTokenBytes || secret.find_first_of(" \t\r\n") != std::string::npos) {
    return Status::InvalidArgument(
        "--http-token-file " + path + ": holds " + std::to_string(secret.size()) +
        " bytes; a token is one word of at least " + std::to_string(kMinTokenBytes) +
        " (for example: head -c 32 /dev/urandom | xxd -p -c 64)");
  }
  return ConsoleToken{secret, path};
}

Result<ConsoleToken> WriteNewConsoleToken(const std::string& data_dir) {
  unsigned char random[32];
  if (getrandom(random, sizeof random, 0) != static_cast<ssize_t>(sizeof random)) {
    return Status::Internal(std::string("no random bytes for the HTTP token: ") +
                            std::strerror(errno));
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string secret;
  for (unsigned char b : random) {
    secret += kHex[b >> 4];
    secret += kHex[b & 15];
  }
  const std::string path = data_dir + "/http-token";
  const std::string tmp = path + ".tmp";
  // Created 0600 (not chmod-ed after): the secret is never readable by others.
  ::unlink(tmp.c_str());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return Status::Unavailable("cannot write " + tmp + ": " + std::strerror(errno));
  const std::string line = secret + "\n";
  const bool written = ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size());
  ::close(fd);
  if (!written || ::rename(tmp.c_str(), path.c_str()) != 0) {
    const std::string why = std::strerror(errno);
    ::unlink(tmp.c_str());
    return Status::Unavailable("cannot write " + path + ": " + why);
  }
  return ConsoleToken{secret, path};
}

bool TokensEqual(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

}  // namespace txmq::broker::http
