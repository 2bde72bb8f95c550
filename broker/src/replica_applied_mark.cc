#include "broker/src/replica_applied_mark.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "protocol/src/util.h"
#include "storage/src/crc32c.h"

namespace txmq::broker {

std::string EncodeReplicaAppliedMark(const ReplicaAppliedMark& mark) {
  char line[192];
  std::snprintf(line, sizeof line,
                "txmq-replica-applied 1 %" PRIu64 " %" PRIu64 " %" PRIu32 " %" PRIu64 " %" PRIu32,
                mark.store.position, mark.store.index, mark.store.prev_crc, mark.replica_index,
                mark.replica_crc);
  std::string text = line;
  char crc[16];
  std::snprintf(crc, sizeof crc, " %08x\n", storage::crc32c::Value(text));
  return text + crc;
}

Result<ReplicaAppliedMark> DecodeReplicaAppliedMark(const std::string& text) {
  ReplicaAppliedMark m;
  unsigned version = 0;
  unsigned crc = 0;
  const size_t cut = text.rfind(' ');
  if (std::sscanf(text.c_str(),
                  "txmq-replica-applied %u %" SCNu64 " %" SCNu64 " %" SCNu32 " %" SCNu64 " %" SCNu32
                  " %x",
                  &version, &m.store.position, &m.store.index, &m.store.prev_crc, &m.replica_index,
                  &m.replica_crc, &crc) != 7 ||
      version != 1 || cut == std::string::npos ||
      storage::crc32c::Value(std::string_view(text).substr(0, cut)) != crc) {
    const std::string line = text.substr(0, text.find('\n'));
    return Status::Corruption(std::string(kReplicaAppliedFile) + " is damaged: '" +
                              OneLineForLog(line) + "'");
  }
  return m;
}

Status WriteReplicaAppliedMark(storage::FileSystem* fs, const std::string& store_dir,
                               const ReplicaAppliedMark& mark) {
  return fs->WriteFileAtomically(store_dir + "/" + kReplicaAppliedFile,
                                 EncodeReplicaAppliedMark(mark));
}

Result<ReplicaAppliedMark> ReadReplicaAppliedMark(storage::FileSystem* fs,
                                                  const std::string& store_dir) {
  const std::string path = store_dir + "/" + kReplicaAppliedFile;
  if (!fs->Exists(path)) return Status::NotFound("no " + path);
  auto text = fs->ReadFile(path);
  if (!text.ok()) return text.status();
  return DecodeReplicaAppliedMark(*text);
}

Status DiscardStoreDir(const std::string& dir) {
  namespace fs = std::filesystem;
  const std::string trash = dir + ".discarded";
  std::error_code ec;
  fs::remove_all(trash, ec);
  if (ec) return Status::Internal("cannot delete " + trash + ": " + ec.message());
  if (!fs::exists(dir, ec)) return Status::OK();
  fs::rename(dir, trash, ec);
  if (ec) return Status::Internal("cannot rename " + dir + " to " + trash + ": " + ec.message());
  const std::string parent = fs::path(dir).parent_path().string();
  const int fd = ::open(parent.empty() ? "." : parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0 || ::fsync(fd) != 0) {
    const int err = errno;
    if (fd >= 0) ::close(fd);
    return Status::Internal("cannot sync " + parent + ": " + std::strerror(err));
  }
  ::close(fd);
  fs::remove_all(trash, ec);
  if (ec) return Status::Internal("cannot delete " + trash + ": " + ec.message());
  return Status::OK();
}

}  // namespace txmq::broker
