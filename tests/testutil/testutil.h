// Helpers for txmq tests: temporary directories, an embedded broker with
// test-friendly timings, real txmqd processes that can be SIGKILLed and
// restarted, running command-line tools, and bounded waiting.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <csignal>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "txmq/broker.h"
#include "txmq/message.h"

namespace txmq::testing {

// A fresh directory under $TMPDIR (or /tmp), removed with its contents.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string Sub(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// Options for a broker on a free loopback port with short timeouts, so
// redelivery and client expiry happen within a test's patience.
BrokerOptions TestBrokerOptions(const std::string& data_dir);

// Starts an embedded broker; fails the current test (and returns null) if
// it cannot.
std::unique_ptr<Broker> StartBroker(const BrokerOptions& options);

// Polls `done` every 10 ms until it is true or `timeout` passed.
bool WaitFor(const std::function<bool()>& done,
             std::chrono::milliseconds timeout = std::chrono::seconds(10));

// The whole file ("" if it cannot be read).
std::string ReadFile(const std::string& path);

// Damage for tests: inverts `n` bytes of the file at `path` from `offset`
// (bit rot the page cache and later reads see). Fails the test if the
// file is shorter.
void FlipBytes(const std::string& path, uint64_t offset, size_t n);

// How many pages of [offset, offset + n) of the file at `path` the page
// cache holds (mincore of a mapping of its own); -1 if it cannot tell.
int64_t CachedPages(const std::string& path, uint64_t offset, uint64_t n);

// Writes the file's cached pages out and drops them from the page cache, so
// the next read of it comes from the disk (as after a reboot). False if the
// kernel would not (a page some process maps stays).
bool EvictFromPageCache(const std::string& path);

// A loopback TCP port free a moment ago, outside the kernel's ephemeral
// range and held for this process by a lock file under
// /tmp/txmq-test-ports, so no other test process is handed it and no
// outgoing connection takes it. -1 if none is left.
int FreeLoopbackPort();

// Path of a binary built by this project (build/bin/NAME).
std::string BinPath(const std::string& name);

// A child process. Killed (SIGKILL) when destroyed if still running.
class Process {
 public:
  // stdout/stderr go to `log_path` when given, else are inherited; the
  // environment is this process's with `extra_env` ("NAME=value") on top.
  static std::unique_ptr<Process> Spawn(const std::vector<std::string>& argv,
                                        const std::string& log_path = "",
                                        const std::vector<std::string>& extra_env = {});
  ~Process();
  pid_t pid() const { return pid_; }
  void Signal(int sig);
  // Exit code (128+signal when killed), or nullopt if still running at the
  // deadline.
  std::optional<int> Wait(std::chrono::milliseconds timeout);

 private:
  explicit Process(pid_t pid) : pid_(pid) {}
  pid_t pid_;
  std::optional<int> exit_code_;
};

// txmqd as a real process on a data directory. Start() picks a free port
// the first time and keeps it across restarts, so clients reconnect.
class BrokerProcess {
 public:
  BrokerProcess(std::string data_dir, std::vector<std::string> extra_args = {},
                std::vector<std::string> extra_env = {});
  ~BrokerProcess();
  // Starts txmqd and waits until it serves (ready file written).
  bool Start();
  void Kill9();
  // SIGTERM (or `sig`) and wait; returns the exit code.
  int Stop(int sig = SIGTERM);
  // Sends `sig` and returns at once (SIGHUP, SIGSTOP, ...).
  void Signal(int sig);
  // Waits for txmqd to exit by itself; its exit code, or nullopt if it still
  // runs at the deadline.
  std::optional<int> WaitExit(std::chrono::milliseconds timeout);
  const std::string& endpoint() const { return endpoint_; }
  // With --http: "http://HOST:PORT" (the ready file's second line); else "".
  const std::string& http_endpoint() const { return http_endpoint_; }
  const std::string& log_path() const { return log_path_; }
  // The running txmqd's pid; -1 when none runs.
  pid_t pid() const { return process_ ? process_->pid() : -1; }
  // Starts this build/bin binary instead of txmqd (a test build of it).
  void UseBinary(std::string name) { binary_ = std::move(name); }

 private:
  std::string data_dir_;
  std::string binary_ = "txmqd";
  std::vector<std::string> extra_args_;
  std::vector<std::string> extra_env_;
  std::string endpoint_;
  std::string http_endpoint_;
  std::string log_path_;
  std::unique_ptr<Process> process_;
  int starts_ = 0;
};

struct CommandResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

// Runs a command to completion (killed after `timeout`), feeding `input`
// on stdin and capturing stdout and stderr.
CommandResult RunCommand(const std::vector<std::string>& argv, const std::string& input = "",
                         std::chrono::milliseconds timeout = std::chrono::seconds(60),
                         const std::vector<std::string>& extra_env = {});

std::vector<std::string> SplitLines(const std::string& text);

inline bool Has(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// Runs `argv` (output to `log_path`) until it has written `ready_path`,
// then SIGKILLs it: a process that dies at the point it chose. Returns the
// ready file's contents; a test failure (and "") if it never got ready.
std::string RunUntilReadyThenKill(const std::vector<std::string>& argv,
                                  const std::string& ready_path, const std::string& log_path);

// Receives `topic` as a fresh consumer group until at least `at_least`
// distinct messages arrived and nothing new came for `quiet` (or `timeout`
// passed); returns how often each message id was delivered.
std::map<std::string, int> DrainTopic(
    const std::string& endpoint, const std::string& topic, size_t at_least,
    std::chrono::milliseconds quiet = std::chrono::milliseconds(1500),
    std::chrono::milliseconds timeout = std::chrono::seconds(60),
    const std::string& group = "drain");

// As DrainTopic, but every delivery in the order it arrived, with its
// queue and offset (a redelivery repeats them; a second stored copy does not).
std::vector<Received> DrainDeliveries(
    const std::string& endpoint, const std::string& topic, size_t at_least,
    std::chrono::milliseconds quiet = std::chrono::milliseconds(1500),
    std::chrono::milliseconds timeout = std::chrono::seconds(60),
    const std::string& group = "drain");

}  // namespace txmq::testing
