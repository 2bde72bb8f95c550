#include "tests/testutil/testutil.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>

#include "txmq/consumer.h"

extern char** environ;

namespace txmq::testing {

TempDir::TempDir() {
  const char* base = std::getenv("TMPDIR");
  std::string tmpl = std::string(base && *base ? base : "/tmp") + "/txmq-test-XXXXXX";
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  if (mkdtemp(buf.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  path_ = buf.data();
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

BrokerOptions TestBrokerOptions(const std::string& data_dir) {
  BrokerOptions o;
  o.listen = "tcp://127.0.0.1:*";
  o.data_dir = data_dir;
  o.retry_backoff = {std::chrono::milliseconds(100), std::chrono::milliseconds(200),
                     std::chrono::milliseconds(300)};
  o.client_timeout = std::chrono::seconds(2);
  o.default_visibility_timeout = std::chrono::seconds(10);
  o.cleanup_interval = std::chrono::milliseconds(100);
  o.transaction_timeout = std::chrono::milliseconds(300);
  o.check_interval = std::chrono::milliseconds(200);
  o.check_interval_max = std::chrono::milliseconds(400);
  o.check_max = 3;
  o.check_timeout = std::chrono::milliseconds(300);
  o.segment_bytes = 32ull << 20;  // small preallocated log files: tests start many brokers
  return o;
}

std::unique_ptr<Broker> StartBroker(const BrokerOptions& options) {
  auto broker = Broker::Start(options);
  EXPECT_TRUE(broker.ok()) << broker.status().ToString();
  if (!broker.ok()) return nullptr;
  return std::move(broker.value());
}

bool WaitFor(const std::function<bool()>& done, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return done();
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void FlipBytes(const std::string& path, uint64_t offset, size_t n) {
  const int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
  ASSERT_GE(fd, 0) << path << ": " << std::strerror(errno);
  std::string bytes(n, '\0');
  const ssize_t got = ::pread(fd, bytes.data(), n, static_cast<off_t>(offset));
  EXPECT_EQ(got, static_cast<ssize_t>(n)) << path << " is shorter than byte " << offset + n;
  if (got == static_cast<ssize_t>(n)) {
    for (char& c : bytes) c = static_cast<char>(~c);
    EXPECT_EQ(::pwrite(fd, bytes.data(), n, static_cast<off_t>(offset)), static_cast<ssize_t>(n))
        << path << ": " << std::strerror(errno);
  }
  ::close(fd);
}

std::string BinPath(const std::string& name) { return std::string(TXMQ_BIN_DIR) + "/" + name; }

int64_t CachedPages(const std::string& path, uint64_t offset, uint64_t n) {
  const uint64_t page = static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
  const uint64_t from = offset / page * page;
  const uint64_t length = offset + n - from;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0 || n == 0) {
    if (fd >= 0) ::close(fd);
    return fd < 0 ? -1 : 0;
  }
  void* map = ::mmap(nullptr, length, PROT_READ, MAP_SHARED, fd, static_cast<off_t>(from));
  ::close(fd);
  if (map == MAP_FAILED) return -1;
  std::vector<unsigned char> resident((length + page - 1) / page);
  const int rc = ::mincore(map, length, resident.data());
  ::munmap(map, length);
  if (rc != 0) return -1;
  return std::count_if(resident.begin(), resident.end(), [](unsigned char r) { return r & 1; });
}

bool EvictFromPageCache(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  struct stat st {};
  const bool dropped = ::fstat(fd, &st) == 0 && ::fdatasync(fd) == 0 &&
                       ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED) == 0;
  ::close(fd);
  return dropped && CachedPages(path, 0, static_cast<uint64_t>(st.st_size)) == 0;
}

namespace {

bool CanBindLoopback(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  const bool ok = bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  close(fd);
  return ok;
}

// The kernel's range for outgoing connections and bind(0); a port outside
// it is never taken by some process's connect().
std::pair<int, int> EphemeralRange() {
  std::ifstream in("/proc/sys/net/ipv4/ip_local_port_range");
  int low = 32768, high = 60999;
  in >> low >> high;
  return {low, high};
}

// Holds `port` for this process's lifetime: an exclusive flock on a file
// named after it, shared by every test process on the machine, released by
// the kernel when the process exits however it ends.
// The lock's descriptor, or -1 if another process holds the port.
int ClaimAcrossProcesses(int port) {
  static const std::string dir = "/tmp/txmq-test-ports";
  ::mkdir(dir.c_str(), 0777);
  const std::string path = dir + "/" + std::to_string(port);
  const int fd = ::open(path.c_str(), O_RDONLY | O_CREAT | O_CLOEXEC, 0666);
  if (fd < 0) return -1;
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

}  // namespace

int FreeLoopbackPort() {
  // Tests of several ctest processes pick ports at once, and the port
  // must stay free until a txmqd started later binds it. A port the kernel
  // picks (bind to 0) is from the ephemeral range, where any connect() of
  // any process may take it meanwhile, and another test process may be
  // handed the same one. So pick outside that range, and claim the port
  // machine-wide (a lock file) before handing it out.
  static std::mutex mu;
  std::lock_guard<std::mutex> lock(mu);
  const auto [ephemeral_low, ephemeral_high] = EphemeralRange();
  int low = 10000, high = ephemeral_low - 1;
  if (high - low < 1000) low = ephemeral_high + 1, high = 65535;
  static uint32_t next = static_cast<uint32_t>(::getpid()) * 7919u;
  const int span = high - low + 1;
  for (int attempt = 0; attempt < span; ++attempt) {
    const int port = low + static_cast<int>(next++ % static_cast<uint32_t>(span));
    const int claim = ClaimAcrossProcesses(port);
    if (claim < 0) continue;
    if (CanBindLoopback(port)) return port;  // the claim's fd stays open till exit
    ::close(claim);
  }
  return -1;
}

namespace {

std::vector<char*> CStrings(const std::vector<std::string>& v) {
  std::vector<char*> out;
  for (const auto& s : v) out.push_back(const_cast<char*>(s.c_str()));
  out.push_back(nullptr);
  return out;
}

// This process's environment with `extra` ("NAME=value" each) set on top:
// an inherited variable of the same name is dropped, as getenv would
// otherwise find it first.
std::vector<std::string> EnvWith(const std::vector<std::string>& extra) {
  auto name = [](const std::string& kv) { return kv.substr(0, kv.find('=')); };
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string kv(*e);
    if (std::none_of(extra.begin(), extra.end(),
                     [&](const std::string& x) { return name(x) == name(kv); })) {
      env.push_back(std::move(kv));
    }
  }
  env.insert(env.end(), extra.begin(), extra.end());
  return env;
}

int DecodeWaitStatus(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

}  // namespace

std::unique_ptr<Process> Process::Spawn(const std::vector<std::string>& argv,
                                        const std::string& log_path,
                                        const std::vector<std::string>& extra_env) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  if (!log_path.empty()) {
    posix_spawn_file_actions_addopen(&actions, 1, log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND,
                                     0644);
    posix_spawn_file_actions_adddup2(&actions, 1, 2);
  }
  auto args = CStrings(argv);
  const std::vector<std::string> env = EnvWith(extra_env);
  auto envp = CStrings(env);
  pid_t pid;
  int rc = posix_spawn(&pid, args[0], &actions, nullptr, args.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) return nullptr;
  return std::unique_ptr<Process>(new Process(pid));
}

Process::~Process() {
  if (!exit_code_) {
    Signal(SIGKILL);
    Wait(std::chrono::seconds(10));
  }
}

void Process::Signal(int sig) {
  if (!exit_code_) kill(pid_, sig);
}

std::optional<int> Process::Wait(std::chrono::milliseconds timeout) {
  if (exit_code_) return exit_code_;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    int status;
    pid_t r = waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      exit_code_ = DecodeWaitStatus(status);
      return exit_code_;
    }
    if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

BrokerProcess::BrokerProcess(std::string data_dir, std::vector<std::string> extra_args,
                             std::vector<std::string> extra_env)
    : data_dir_(std::move(data_dir)),
      extra_args_(std::move(extra_args)),
      extra_env_(std::move(extra_env)),
      log_path_(data_dir_ + ".log") {}

BrokerProcess::~BrokerProcess() {
  if (process_) Stop();
}

bool BrokerProcess::Start() {
  const std::string ready = data_dir_ + ".ready";
  std::filesystem::remove(ready);
  std::vector<std::string> argv = {BinPath(binary_),
                                   "--data-dir",
                                   data_dir_,
                                   "--listen",
                                   endpoint_.empty() ? "tcp://127.0.0.1:*" : endpoint_,
                                   "--ready-file",
                                   ready};
  argv.insert(argv.end(), extra_args_.begin(), extra_args_.end());
  ++starts_;
  process_ = Process::Spawn(argv, log_path_, extra_env_);
  if (!process_) return false;
  bool up = WaitFor(
      [&] {
        if (process_->Wait(std::chrono::milliseconds(0))) return true;  // exited
        return std::filesystem::exists(ready);
      },
      std::chrono::seconds(20));
  if (!up || !std::filesystem::exists(ready)) {
    ADD_FAILURE() << "txmqd did not start; log:\n" << ReadFile(log_path_);
    return false;
  }
  // Line 1: the ZeroMQ endpoint; line 2 (with --http): the HTTP address.
  const auto lines = SplitLines(ReadFile(ready));
  endpoint_ = lines.empty() ? "" : lines[0];
  http_endpoint_ = lines.size() > 1 ? lines[1] : "";
  return true;
}

void BrokerProcess::Kill9() {
  if (!process_) return;
  process_->Signal(SIGKILL);
  process_->Wait(std::chrono::seconds(10));
  process_.reset();
}

std::optional<int> BrokerProcess::WaitExit(std::chrono::milliseconds timeout) {
  if (!process_) return std::nullopt;
  auto code = process_->Wait(timeout);
  if (code) process_.reset();
  return code;
}

void BrokerProcess::Signal(int sig) {
  if (process_) process_->Signal(sig);
}

int BrokerProcess::Stop(int sig) {
  if (!process_) return -1;
  process_->Signal(sig);
  auto code = process_->Wait(std::chrono::seconds(20));
  process_.reset();
  return code.value_or(-1);
}

CommandResult RunCommand(const std::vector<std::string>& argv, const std::string& input,
                         std::chrono::milliseconds timeout,
                         const std::vector<std::string>& extra_env) {
  TempDir dir;
  const std::string in_path = dir.Sub("in"), out_path = dir.Sub("out"), err_path = dir.Sub("err");
  std::ofstream(in_path) << input;
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, in_path.c_str(), O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                   0644);
  posix_spawn_file_actions_addopen(&actions, 2, err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                   0644);
  const std::vector<std::string> env = EnvWith(extra_env);
  auto args = CStrings(argv);
  auto envp = CStrings(env);
  pid_t pid;
  CommandResult result;
  int rc = posix_spawn(&pid, args[0], &actions, nullptr, args.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) {
    result.err = "spawn failed";
    return result;
  }
  auto deadline = std::chrono::steady_clock::now() + timeout;
  int status = 0;
  while (waitpid(pid, &status, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() >= deadline) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      result.err = "timed out; ";
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  result.exit_code = DecodeWaitStatus(status);
  result.out = ReadFile(out_path);
  result.err += ReadFile(err_path);
  return result;
}

std::map<std::string, int> DrainTopic(const std::string& endpoint, const std::string& topic,
                                      size_t at_least, std::chrono::milliseconds quiet,
                                      std::chrono::milliseconds timeout, const std::string& group) {
  std::map<std::string, int> seen;
  for (const Received& m : DrainDeliveries(endpoint, topic, at_least, quiet, timeout, group)) {
    ++seen[m.id];
  }
  return seen;
}

std::vector<Received> DrainDeliveries(const std::string& endpoint, const std::string& topic,
                                      size_t at_least, std::chrono::milliseconds quiet,
                                      std::chrono::milliseconds timeout, const std::string& group) {
  std::mutex mu;
  std::map<std::string, int> seen;
  std::vector<Received> deliveries;
  auto last_new = std::chrono::steady_clock::now();
  Consumer c({.broker = endpoint, .group = group, .long_poll = std::chrono::milliseconds(300)});
  EXPECT_TRUE(c.Subscribe(topic, [&](const Received& m) {
                 std::lock_guard<std::mutex> lock(mu);
                 if (seen[m.id]++ == 0) last_new = std::chrono::steady_clock::now();
                 deliveries.push_back(m);
                 return ConsumeResult::Success();
               }).ok());
  EXPECT_TRUE(c.Start().ok());
  WaitFor(
      [&] {
        std::lock_guard<std::mutex> lock(mu);
        return seen.size() >= at_least && std::chrono::steady_clock::now() - last_new > quiet;
      },
      timeout);
  c.Shutdown();
  std::lock_guard<std::mutex> lock(mu);
  return deliveries;
}

std::string RunUntilReadyThenKill(const std::vector<std::string>& argv,
                                  const std::string& ready_path, const std::string& log_path) {
  auto process = Process::Spawn(argv, log_path);
  if (!process) {
    ADD_FAILURE() << "cannot start " << argv[0];
    return "";
  }
  if (!WaitFor([&] { return std::filesystem::exists(ready_path); }, std::chrono::seconds(20))) {
    ADD_FAILURE() << argv[0] << " never got ready; log:\n" << ReadFile(log_path);
    return "";
  }
  process->Signal(SIGKILL);
  process->Wait(std::chrono::seconds(10));
  return ReadFile(ready_path);
}

std::vector<std::string> SplitLines(const std::string& text) {
  std::vector<std::string> lines;
  std::stringstream ss(text);
  for (std::string line; std::getline(ss, line);) lines.push_back(line);
  return lines;
}

}  // namespace txmq::testing
