#include "broker/src/sd_notify.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace txmq::broker {

Status NotifyServiceManager(const std::string& state) {
  const char* path = std::getenv("NOTIFY_SOCKET");
  if (path == nullptr || path[0] == '\0') return Status::OK();
  const std::string where = path;
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  if (where.size() >= sizeof(address.sun_path) || (where[0] != '/' && where[0] != '@')) {
    return Status::InvalidArgument("NOTIFY_SOCKET '" + where +
                                   "' is neither an absolute path nor an abstract name (@...)");
  }
  std::memcpy(address.sun_path, where.data(), where.size());
  if (where[0] == '@') address.sun_path[0] = '\0';  // the abstract namespace
  const socklen_t length = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + where.size());
  const int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Status::Unavailable("NOTIFY_SOCKET: socket: " + std::string(strerror(errno)));
  const ssize_t sent = sendto(fd, state.data(), state.size(), MSG_NOSIGNAL,
                              reinterpret_cast<const sockaddr*>(&address), length);
  const int error = errno;
  close(fd);
  if (sent < 0) {
    return Status::Unavailable("NOTIFY_SOCKET '" + where + "': " + std::string(strerror(error)));
  }
  return Status::OK();
}

}  // namespace txmq::broker
