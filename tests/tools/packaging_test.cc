// What tools/packaging ships: the sample config is what txmqd prints and
// every key in it parses; the systemd unit verifies; txmqd tells the
// service manager when it is ready (Type=notify) and when it stops.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>

#include "tests/testutil/testutil.h"

namespace txmq {
namespace {

using testing::ReadFile;
using testing::RunCommand;
using testing::TempDir;

std::string Packaging(const std::string& file) {
  return std::string(TXMQ_SOURCE_DIR) + "/tools/packaging/" + file;
}

TEST(Packaging, TheSampleConfigIsWhatTxmqdPrintsAndEveryKeyInItParses) {
  auto printed = RunCommand({testing::BinPath("txmqd"), "--print-config"});
  ASSERT_EQ(printed.exit_code, 0) << printed.err;
  EXPECT_EQ(printed.out, ReadFile(Packaging("txmqd.conf")))
      << "tools/packaging/txmqd.conf is stale: regenerate it with "
         "build/bin/txmqd --print-config > tools/packaging/txmqd.conf";

  // Every commented-out key with a value, uncommented: txmqd starts with it.
  std::istringstream lines(printed.out);
  std::string config;
  int keys = 0;
  const std::regex setting("^# ([a-z0-9-]+) = (.+)$");
  for (std::string line; std::getline(lines, line);) {
    std::smatch m;
    if (std::regex_match(line, m, setting)) {
      config += m[1].str() + " = " + m[2].str() + "\n";
      ++keys;
    }
  }
  EXPECT_GE(keys, 40) << "every option of txmqd";
  TempDir dir;
  std::ofstream(dir.Sub("all.conf")) << config;
  testing::BrokerProcess broker(dir.Sub("data"), {"--config", dir.Sub("all.conf")});
  ASSERT_TRUE(broker.Start()) << config << ReadFile(broker.log_path());
  EXPECT_EQ(broker.Stop(), 0);
}

TEST(Packaging, TheSystemdUnitVerifies) {
  TempDir dir;
  std::string unit = ReadFile(Packaging("txmqd.service"));
  ASSERT_NE(unit.find("Type=notify"), std::string::npos);
  // The paths the unit names must exist where it is checked.
  auto replace = [&](const std::string& from, const std::string& to) {
    ASSERT_NE(unit.find(from), std::string::npos) << from;
    for (size_t at = unit.find(from); at != std::string::npos;
         at = unit.find(from, at + to.size())) {
      unit.replace(at, from.size(), to);
    }
  };
  replace("/usr/bin/txmqd", testing::BinPath("txmqd"));
  replace("/etc/txmq/txmqd.conf", Packaging("txmqd.conf"));
  std::ofstream(dir.Sub("txmqd.service")) << unit;
  const std::string analyze = "/usr/bin/systemd-analyze";
  ASSERT_EQ(access(analyze.c_str(), X_OK), 0)
      << "no " << analyze << ": scripts/deps.sh installs systemd";
  auto r = RunCommand({analyze, "verify", dir.Sub("txmqd.service")});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  // systemd-analyze exits 0 on a key it ignores: any line about the unit is
  // a mistake in it.
  EXPECT_EQ(r.err.find("txmqd.service"), std::string::npos) << r.err;
  EXPECT_EQ(r.out.find("txmqd.service"), std::string::npos) << r.out;
}

// A datagram socket standing in for systemd's $NOTIFY_SOCKET.
class NotifySocket {
 public:
  explicit NotifySocket(const std::string& path) : path_(path) {
    fd_ = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::strncpy(a.sun_path, path.c_str(), sizeof(a.sun_path) - 1);
    bound_ = fd_ >= 0 && bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0;
    timeval timeout{10, 0};  // every wait below is bounded
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  }
  ~NotifySocket() {
    if (fd_ >= 0) close(fd_);
    unlink(path_.c_str());
  }
  bool bound() const { return bound_; }
  // The next message, or "" after 10 s.
  std::string Receive() {
    char buf[4096];
    const ssize_t n = recv(fd_, buf, sizeof(buf), 0);
    return n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
  }

 private:
  std::string path_;
  int fd_ = -1;
  bool bound_ = false;
};

TEST(Packaging, TxmqdTellsTheServiceManagerWhenItIsReadyAndWhenItStops) {
  TempDir dir;
  NotifySocket manager(dir.Sub("notify"));
  ASSERT_TRUE(manager.bound());
  testing::BrokerProcess broker(dir.Sub("data"), {}, {"NOTIFY_SOCKET=" + dir.Sub("notify")});
  ASSERT_TRUE(broker.Start());
  const std::string ready = manager.Receive();
  EXPECT_NE(ready.find("READY=1"), std::string::npos) << ready;
  EXPECT_NE(ready.find("STATUS=serving on " + broker.endpoint()), std::string::npos) << ready;
  EXPECT_NE(ready.find("MAINPID=" + std::to_string(broker.pid())), std::string::npos) << ready;
  EXPECT_EQ(broker.Stop(), 0);
  EXPECT_EQ(manager.Receive(), "STOPPING=1");
}

TEST(Packaging, ABadNotifySocketIsLoggedAndTxmqdServesAnyway) {
  TempDir dir;
  testing::BrokerProcess broker(dir.Sub("data"), {}, {"NOTIFY_SOCKET=relative/path"});
  ASSERT_TRUE(broker.Start());
  // The ready file may be written before the notification is tried (and
  // logged): wait for the line rather than read the log once.
  EXPECT_TRUE(testing::WaitFor(
      [&] {
        return ReadFile(broker.log_path()).find("could not tell the service manager") !=
               std::string::npos;
      },
      std::chrono::seconds(5)))
      << ReadFile(broker.log_path());
  EXPECT_EQ(broker.Stop(), 0);
}

}  // namespace
}  // namespace txmq
