#include "storage/src/file_system.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <climits>
#include <cstring>
#include <filesystem>

#include "storage/src/fd_shortage.h"

namespace txmq::storage {
namespace {

// open(2) that waits out a shortage of descriptors (fd_shortage.h).
int OpenWaiting(const std::string& path, int flags, mode_t mode = 0) {
  DescriptorWait wait(path);
  int fd;
  do {
    fd = ::open(path.c_str(), flags, mode);
  } while (fd < 0 && wait.Again(errno));
  return fd;
}

Status Errno(const std::string& what, const std::string& path, int err) {
  std::string msg = what + " '" + path + "': " + std::strerror(err);
  if (err == ENOENT) return Status::NotFound(msg);
  if (err == ENOSPC || err == EDQUOT) return Status::Unavailable(msg);
  if (IsDescriptorShortage(err))
    return Status::ResourceExhausted(msg + " (out of file descriptors)");
  return Status::Internal(msg);
}

std::string DirOf(const std::string& path) {
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
}

Status SyncDirectory(const std::string& dir) {
  const int fd = OpenWaiting(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Errno("opening directory", dir, errno);
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  return rc == 0 ? Status::OK() : Errno("syncing directory", dir, err);
}

class PosixFile final : public File {
 public:
  PosixFile(std::string path, int fd, uint64_t size, const char* map)
      : path_(std::move(path)), fd_(fd), size_(size), map_(map), data_end_(DataEnd(fd, size)) {}
  ~PosixFile() override {
    if (map_ != nullptr) ::munmap(const_cast<char*>(map_), size_);
    ::close(fd_);
  }

  Status WriteAt(uint64_t offset, std::span<const iovec> data) override {
    // pwritev takes at most IOV_MAX buffers and may write less than asked.
    std::vector<iovec> rest(data.begin(), data.end());
    size_t first = 0;
    while (first < rest.size()) {
      const int count = static_cast<int>(std::min<size_t>(rest.size() - first, IOV_MAX));
      const ssize_t n = ::pwritev(fd_, rest.data() + first, count, static_cast<off_t>(offset));
      if (n < 0) {
        if (errno == EINTR) continue;
        return Errno("writing", path_, errno);
      }
      offset += static_cast<uint64_t>(n);
      WroteUpTo(offset);
      size_t left = static_cast<size_t>(n);
      while (first < rest.size() && left >= rest[first].iov_len) left -= rest[first++].iov_len;
      if (left > 0) {
        rest[first].iov_base = static_cast<char*>(rest[first].iov_base) + left;
        rest[first].iov_len -= left;
      }
    }
    return Status::OK();
  }

  Status Sync() override {
    return ::fdatasync(fd_) == 0 ? Status::OK() : Errno("syncing", path_, errno);
  }

  void DropCache(uint64_t offset, uint64_t n) override {
    static const uint64_t page = static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
    // The kernel drops only folios wholly inside the range, and the page
    // cache holds a file in folios of up to 2 MiB: a folio across the start
    // of this range stuck out past the end of the last one and stayed.
    // Starting at a folio boundary takes it now (dropping what is already
    // gone costs next to nothing).
    constexpr uint64_t kLargestFolio = 2u << 20;
    const uint64_t from = offset / kLargestFolio * kLargestFolio;
    const uint64_t to = std::min(offset + n, size_) / page * page;
    if (to <= from) return;
    // The kernel keeps a page that a process maps: unmap ours first (a
    // shared file mapping reads the page back from the file when touched
    // again, so a reader holding a view loses nothing).
    if (map_ != nullptr) ::madvise(const_cast<char*>(map_) + from, to - from, MADV_DONTNEED);
    ::posix_fadvise(fd_, static_cast<off_t>(from), static_cast<off_t>(to - from),
                    POSIX_FADV_DONTNEED);
  }

  std::pair<uint64_t, uint64_t> DataAfter(uint64_t offset) const override {
    const uint64_t end = data_end_.load(std::memory_order_acquire);
    return offset < end ? std::pair(offset, end) : std::pair(size_, size_);
  }

  std::string_view mapped() const override { return {map_, map_ ? size_ : 0}; }
  uint64_t size() const override { return size_; }
  const std::string& path() const override { return path_; }

 private:
  std::string path_;
  int fd_;
  uint64_t size_;
  const char* map_;
  // Past this the file reads as zeros: what the file system held at open
  // (its last data, counting the page cache), then what WriteAt wrote.
  std::atomic<uint64_t> data_end_;

  void WroteUpTo(uint64_t end) {
    uint64_t seen = data_end_.load(std::memory_order_relaxed);
    while (end > seen && !data_end_.compare_exchange_weak(seen, end, std::memory_order_release)) {
    }
  }

  // Where the file's last stretch of data ends: SEEK_DATA/SEEK_HOLE skip
  // holes and unwritten (preallocated) extents the page cache does not
  // hold. Asked before anything maps the file in, so readahead has not yet
  // made zeros look like data; the whole file when the system cannot tell.
  static uint64_t DataEnd(int fd, uint64_t size) {
    uint64_t end = 0;
    off_t at = 0;
    for (int stretches = 0; static_cast<uint64_t>(at) < size; ++stretches) {
      const off_t data = ::lseek(fd, at, SEEK_DATA);
      if (data < 0) return errno == ENXIO ? end : size;
      const off_t hole = ::lseek(fd, data, SEEK_HOLE);
      if (hole < 0 || stretches == 64) return size;  // fragmented: read it all
      end = std::min<uint64_t>(static_cast<uint64_t>(hole), size);
      at = hole;
    }
    return end;
  }
};

class PosixFileSystem final : public FileSystem {
 public:
  Status CreateDirs(const std::string& path) override {
    std::error_code ec;
    std::filesystem::create_directories(path, ec);
    if (ec) return Status::Internal("creating directory '" + path + "': " + ec.message());
    return Status::OK();
  }

  Result<std::vector<std::string>> List(const std::string& dir) override {
    DescriptorWait wait(dir);
    DIR* d;
    do {
      d = ::opendir(dir.c_str());
    } while (d == nullptr && wait.Again(errno));
    if (d == nullptr) return Errno("listing", dir, errno);
    std::vector<std::string> names;
    while (dirent* e = ::readdir(d)) {
      std::string name = e->d_name;
      if (name != "." && name != "..") names.push_back(std::move(name));
    }
    ::closedir(d);
    return names;
  }

  bool Exists(const std::string& path) override { return ::access(path.c_str(), F_OK) == 0; }

  Result<std::unique_ptr<File>> Open(const std::string& path, uint64_t size) override {
    int fd = OpenWaiting(path, O_RDWR | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT && size > 0) {
      fd = OpenWaiting(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
      if (fd < 0) return Errno("creating", path, errno);
      // Blocks reserved and the final size set now, so appends never
      // change the file's size (fdatasync then flushes data only).
      if (int rc = ::posix_fallocate(fd, 0, static_cast<off_t>(size)); rc != 0) {
        ::close(fd);
        ::unlink(path.c_str());
        return Errno("preallocating", path, rc);
      }
      if (::fsync(fd) != 0) {
        const int err = errno;
        ::close(fd);
        return Errno("syncing", path, err);
      }
      if (Status s = SyncDirectory(DirOf(path)); !s.ok()) {
        ::close(fd);
        return s;
      }
    } else if (fd < 0) {
      return Errno("opening", path, errno);
    }
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
      const int err = errno;
      ::close(fd);
      return Errno("reading the size of", path, err);
    }
    const auto file_size = static_cast<uint64_t>(st.st_size);
    const char* map = nullptr;
    if (file_size > 0) {
      void* m = ::mmap(nullptr, file_size, PROT_READ, MAP_SHARED, fd, 0);
      if (m == MAP_FAILED) {
        const int err = errno;
        ::close(fd);
        return Errno("mapping", path, err);
      }
      map = static_cast<const char*>(m);
      // Files here are logs, read front to back. A page fault then reads
      // ahead of the page, not around it: reading around would bring back,
      // behind a reader, pages DropCache has just let go (seen as up to 4
      // MiB cached behind a reader under load).
      ::madvise(m, file_size, MADV_SEQUENTIAL);
    }
    return std::unique_ptr<File>(new PosixFile(path, fd, file_size, map));
  }

  Status Remove(const std::string& path) override {
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) return Errno("removing", path, errno);
    return Status::OK();
  }

  Result<std::string> ReadFile(const std::string& path) override {
    const int fd = OpenWaiting(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return Errno("opening", path, errno);
    std::string out;
    char buf[4096];
    while (true) {
      const ssize_t n = ::read(fd, buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        const int err = errno;
        ::close(fd);
        return Errno("reading", path, err);
      }
      if (n == 0) break;
      out.append(buf, static_cast<size_t>(n));
    }
    ::close(fd);
    return out;
  }

  Status WriteFileAtomically(const std::string& path, std::string_view contents) override {
    const std::string tmp = path + ".tmp";
    const int fd = OpenWaiting(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return Errno("creating", tmp, errno);
    size_t done = 0;
    while (done < contents.size()) {
      const ssize_t n = ::write(fd, contents.data() + done, contents.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        const int err = errno;
        ::close(fd);
        return Errno("writing", tmp, err);
      }
      done += static_cast<size_t>(n);
    }
    if (::fsync(fd) != 0) {
      const int err = errno;
      ::close(fd);
      return Errno("syncing", tmp, err);
    }
    ::close(fd);
    if (::rename(tmp.c_str(), path.c_str()) != 0) return Errno("renaming", tmp, errno);
    return SyncDirectory(DirOf(path));
  }
};

}  // namespace

FileSystem* FileSystem::Default() {
  static PosixFileSystem* fs = new PosixFileSystem();  // never destroyed: used until exit
  return fs;
}

}  // namespace txmq::storage
