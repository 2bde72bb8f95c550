#include "tools/txmq-bench/broker_process.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <mutex>
#include <thread>
#include <vector>

#include "tools/txmq-bench/bench_error.h"

extern char** environ;

namespace txmq::bench {

namespace fs = std::filesystem;

namespace {

constexpr auto kReadyTimeout = std::chrono::seconds(15);
// txmqd finishes accepted writes before exiting; give it time to.
constexpr auto kStopTimeout = std::chrono::seconds(30);
constexpr auto kPollInterval = std::chrono::milliseconds(10);

std::string ExitText(int status) {
  if (WIFEXITED(status)) return "exit status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return std::string("signal ") + strsignal(WTERMSIG(status));
  return "status " + std::to_string(status);
}

// Waits up to `timeout` for `pid` to exit; true (and *status) when it did.
bool WaitForExit(pid_t pid, std::chrono::milliseconds timeout, int* status) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    pid_t r = waitpid(pid, status, WNOHANG);
    if (r == pid || (r < 0 && errno != EINTR)) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(kPollInterval);
  }
}

}  // namespace

std::vector<std::string> MergeBrokerArgs(const std::vector<BrokerFlag>& defaults,
                                         const std::vector<std::string>& overrides) {
  auto overridden = [&overrides](const std::string& flag) {
    for (const std::string& arg : overrides) {
      if (arg == flag || arg.starts_with(flag + "=")) return true;
    }
    return false;
  };
  std::vector<std::string> args;
  for (const auto& [flag, value] : defaults) {
    if (overridden(flag)) continue;
    args.push_back(flag);
    args.push_back(value);
  }
  args.insert(args.end(), overrides.begin(), overrides.end());
  return args;
}

std::string OwnDirectory() {
  std::error_code ec;
  fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (ec) throw BenchError("cannot read /proc/self/exe: " + ec.message());
  return exe.parent_path().string();
}

BrokerProcess::BrokerProcess(const std::string& txmqd_path,
                             const std::vector<std::string>& extra_args) {
  const std::string txmqd = txmqd_path.empty() ? OwnDirectory() + "/txmqd" : txmqd_path;
  if (access(txmqd.c_str(), X_OK) != 0) {
    throw BenchError("cannot run broker binary " + txmqd + ": " + strerror(errno) +
                     " (build target txmqd, or pass --txmqd PATH or --broker URL)");
  }
  std::string pattern = (fs::temp_directory_path() / "txmq-bench-XXXXXX").string();
  if (mkdtemp(pattern.data()) == nullptr) {
    throw BenchError("cannot create a temporary directory " + pattern + ": " + strerror(errno));
  }
  temp_dir_ = pattern;
  log_path_ = temp_dir_ + "/txmqd.log";
  ready_path_ = temp_dir_ + "/ready";
  const std::string data_dir = temp_dir_ + "/data";

  std::vector<std::string> args{txmqd,    "--listen",     "tcp://127.0.0.1:*", "--data-dir",
                                data_dir, "--ready-file", ready_path_};
  args.insert(args.end(), extra_args.begin(), extra_args.end());
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, log_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                   0644);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  // We block SIGINT/SIGTERM for our own signal thread; txmqd must start
  // with a clean mask and default handlers.
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none, defaults;
  sigemptyset(&none);
  sigemptyset(&defaults);
  sigaddset(&defaults, SIGINT);
  sigaddset(&defaults, SIGTERM);
  sigaddset(&defaults, SIGPIPE);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &defaults);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  const int rc = posix_spawn(&pid_, txmqd.c_str(), &actions, &attr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) {
    pid_ = -1;
    fs::remove_all(temp_dir_);
    throw BenchError("cannot start " + txmqd + ": " + strerror(rc));
  }
  RegisterForSignals(this);
  try {
    WaitUntilReady();
  } catch (...) {
    // The destructor does not run for a half-built object.
    UnregisterForSignals(this);
    Stop();
    fs::remove_all(temp_dir_);
    throw;
  }
}

BrokerProcess::~BrokerProcess() {
  UnregisterForSignals(this);
  const std::string problem = Stop();
  if (!problem.empty()) {
    std::cerr << "txmq-bench: warning: txmqd ended with " << problem << LogTail() << "\n";
  }
  std::error_code ec;
  fs::remove_all(temp_dir_, ec);
}

void BrokerProcess::WaitUntilReady() {
  const auto deadline = std::chrono::steady_clock::now() + kReadyTimeout;
  while (true) {
    // txmqd writes the file under another name and renames it: once it is
    // there, it is complete.
    std::ifstream ready(ready_path_);
    if (ready && std::getline(ready, endpoint_) && !endpoint_.empty()) return;
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      throw BenchError("txmqd stopped before serving (" + ExitText(status) + ")" + LogTail());
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      throw BenchError("txmqd did not write its ready file within 15 s" + LogTail());
    }
    std::this_thread::sleep_for(kPollInterval);
  }
}

std::string BrokerProcess::Stop() {
  if (pid_ <= 0) return "";
  const pid_t pid = pid_;
  pid_ = -1;
  int status = 0;
  kill(pid, SIGTERM);
  if (!WaitForExit(pid, kStopTimeout, &status)) {
    kill(pid, SIGKILL);
    WaitForExit(pid, std::chrono::seconds(5), &status);
    return "SIGKILL after ignoring SIGTERM for 30 s";
  }
  return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? "" : ExitText(status);
}

std::string BrokerProcess::LogTail() const {
  std::ifstream in(log_path_);
  std::deque<std::string> lines;
  for (std::string line; std::getline(in, line);) {
    lines.push_back(line);
    if (lines.size() > 3) lines.pop_front();
  }
  std::string out;
  for (const auto& l : lines) out += (out.empty() ? "; txmqd log: " : " | ") + l;
  return out;
}

// ---- Ctrl-C / SIGTERM: stop the broker and remove its data, then exit ----

namespace {
std::mutex signal_mu;
BrokerProcess* signal_broker = nullptr;  // guarded by signal_mu
}  // namespace

void BrokerProcess::RegisterForSignals(BrokerProcess* broker) {
  std::lock_guard<std::mutex> lock(signal_mu);
  signal_broker = broker;
}

void BrokerProcess::UnregisterForSignals(BrokerProcess* broker) {
  std::lock_guard<std::mutex> lock(signal_mu);
  if (signal_broker == broker) signal_broker = nullptr;
}

void BrokerProcess::StopOnSignals() {
  // Blocked here, before any other thread exists, so every thread inherits
  // the mask and only the waiter below ever sees these signals.
  static sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  std::thread([] {
    int sig = 0;
    sigwait(&signals, &sig);
    // Holding the lock for good: the destructor cannot race the cleanup.
    signal_mu.lock();
    if (signal_broker != nullptr) {
      signal_broker->Stop();
      std::error_code ec;
      fs::remove_all(signal_broker->temp_dir_, ec);
    }
    std::cerr << "txmq-bench: interrupted by " << strsignal(sig) << "\n";
    _exit(128 + sig);
  }).detach();
}

}  // namespace txmq::bench
