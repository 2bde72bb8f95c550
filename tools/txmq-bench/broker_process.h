// A txmqd started by txmq-bench for one run: its own process (so its CPU use
// can be read from /proc and it cannot share our threads), a fresh temporary
// data dir, a free port. Stopped with SIGTERM and the data dir removed when
// the object goes away, also on error paths.
#pragma once

#include <sys/types.h>

#include <string>
#include <utility>
#include <vector>

namespace txmq::bench {

// A txmqd flag with its value, e.g. {"--flush", "sync"}.
using BrokerFlag = std::pair<std::string, std::string>;

// The arguments for txmqd: `defaults` as "--flag value" words, except the
// flags that `overrides` names ("--flag" or "--flag=..."), then `overrides`
// as given. So a user's --broker-arg replaces txmq-bench's default instead of
// repeating the flag (which txmqd would refuse).
std::vector<std::string> MergeBrokerArgs(const std::vector<BrokerFlag>& defaults,
                                         const std::vector<std::string>& overrides);

class BrokerProcess {
 public:
  // Starts `txmqd_path` (empty = the txmqd next to this executable) with
  // its own --listen, --data-dir and --ready-file, followed by `args`
  // (e.g. "--flush", "sync"), and waits until it serves. Throws BenchError
  // when it does not.
  BrokerProcess(const std::string& txmqd_path, const std::vector<std::string>& args);
  ~BrokerProcess();
  BrokerProcess(const BrokerProcess&) = delete;
  BrokerProcess& operator=(const BrokerProcess&) = delete;

  // "tcp://127.0.0.1:41234".
  const std::string& endpoint() const { return endpoint_; }
  pid_t pid() const { return pid_; }

  // Call first thing in main(): on SIGINT, SIGTERM or SIGHUP the broker
  // being run is stopped and its data dir removed before txmq-bench exits.
  static void StopOnSignals();

 private:
  static void RegisterForSignals(BrokerProcess* broker);
  static void UnregisterForSignals(BrokerProcess* broker);

  void WaitUntilReady();
  // SIGTERM, wait (then SIGKILL); returns the exit status text or "".
  std::string Stop();
  std::string LogTail() const;

  std::string temp_dir_;
  std::string log_path_;
  std::string ready_path_;
  std::string endpoint_;
  pid_t pid_ = -1;
};

// The directory of the running executable (from /proc/self/exe).
std::string OwnDirectory();

}  // namespace txmq::bench
