// txmqctl when the broker is not there, or not answering: how fast it
// says so, how long it waits, which exit code a script sees, and which
// broker addresses it accepts.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>

#include "tests/tools/ctl_fixture.h"

namespace txmq {
namespace {

using namespace std::chrono_literals;
using testing::RunCommand;

// A TCP socket on a free loopback port that takes connections (the kernel
// completes them) and never says a word: a broker that hangs. Closed, its
// port is one nothing listens on.
class SilentListener {
 public:
  SilentListener() {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(addr);
    EXPECT_EQ(bind(fd_, reinterpret_cast<sockaddr*>(&addr), len), 0);
    EXPECT_EQ(listen(fd_, 64), 0);
    EXPECT_EQ(getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len), 0);
    port_ = ntohs(addr.sin_port);
  }
  ~SilentListener() { Close(); }
  void Close() {
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
  }
  std::string url() const { return "tcp://127.0.0.1:" + std::to_string(port_); }

 private:
  int fd_ = -1;
  int port_ = 0;
};

struct Timed {
  testing::CommandResult result;
  std::chrono::milliseconds took;
};

Timed RunTxmqctl(const std::vector<std::string>& args,
                 const std::vector<std::string>& extra_env = {}) {
  std::vector<std::string> argv = {testing::BinPath("txmqctl")};
  argv.insert(argv.end(), args.begin(), args.end());
  const auto start = std::chrono::steady_clock::now();
  auto r = RunCommand(argv, "", 60s, extra_env);
  return {r, std::chrono::duration_cast<std::chrono::milliseconds>(
                 std::chrono::steady_clock::now() - start)};
}

std::string Joined(const std::vector<std::string>& args) {
  std::string out;
  for (const auto& a : args) out += a + " ";
  return out;
}

TEST(TxmqctlReach, NoBrokerFailsAtOnceWithExitThreeAndSaysWhere) {
  SilentListener gone;
  gone.Close();  // nothing listens there now: connections are refused
  for (const std::vector<std::string>& command :
       std::vector<std::vector<std::string>>{{"status"},
                                             {"send", "orders", "hello"},
                                             {"consume", "orders", "--group", "g"},
                                             {"tx", "list"},
                                             {"topic", "create", "orders"}}) {
    std::vector<std::string> args = {"--broker", gone.url()};
    args.insert(args.end(), command.begin(), command.end());
    auto [r, took] = RunTxmqctl(args);
    // Without the check, status waited 10 s, send 30 s, consume 15 s.
    EXPECT_LT(took, 3s) << Joined(args) << "waited out a deadline";
    EXPECT_EQ(r.exit_code, kExitUnreachable) << Joined(args) << r.err;
    EXPECT_EQ(testing::SplitLines(r.err).size(), 1u) << r.err;
    EXPECT_NE(r.err.find("no broker at " + gone.url() + " (connection refused)"), std::string::npos)
        << r.err;
    EXPECT_EQ(r.out, "");
  }
}

TEST(TxmqctlReach, TimeoutBoundsTheWholeCommandIncludingASendsRetries) {
  SilentListener hung;  // connects, never answers
  for (const std::vector<std::string>& command : std::vector<std::vector<std::string>>{
           {"send", "orders", "hello"}, {"status"}, {"tx", "list"}}) {
    std::vector<std::string> args = {"--broker", hung.url(), "--timeout", "2s"};
    args.insert(args.end(), command.begin(), command.end());
    auto [r, took] = RunTxmqctl(args);
    EXPECT_EQ(r.exit_code, kExitUnreachable) << Joined(args) << r.err;
    EXPECT_GE(took, 1900ms) << Joined(args) << "gave up before --timeout";
    // A send used to take 3 x --timeout (one per attempt): 6 s here.
    EXPECT_LT(took, 4500ms) << Joined(args) << "ran past --timeout";
    EXPECT_NE(r.err.find(hung.url()), std::string::npos) << r.err;
    EXPECT_EQ(testing::SplitLines(r.err).size(), 1u) << r.err;
  }
}

using TxmqctlAddress = CtlTest;

TEST_F(TxmqctlAddress, HostPortAndABarePortMeanTcp) {
  const std::string url = broker_->endpoint();  // tcp://127.0.0.1:PORT
  const std::string host_port = url.substr(std::string("tcp://").size());
  const std::string port = host_port.substr(host_port.rfind(':') + 1);
  for (const auto& broker : {url, host_port, port}) {
    auto [r, took] = RunTxmqctl({"--broker", broker, "--json", "status"});
    ASSERT_EQ(r.exit_code, 0) << broker << ": " << r.err;
    EXPECT_EQ(nlohmann::json::parse(r.out)["listen"], url);
  }
  auto [env, took] = RunTxmqctl({"status"}, {"TXMQ_BROKER=" + host_port});
  EXPECT_EQ(env.exit_code, 0) << env.err;
}

TEST_F(TxmqctlAddress, AnythingElseIsBadUsageThatNamesTheFix) {
  for (const char* bad : {"localhost", "http://127.0.0.1:7800", "127.0.0.1:99999",
                          "tcp://127.0.0.1", "tcp://127.0.0.1:port"}) {
    auto [r, took] = RunTxmqctl({"--broker", bad, "status"});
    EXPECT_EQ(r.exit_code, kExitUsage) << bad << ": " << r.err;
    EXPECT_NE(r.err.find(std::string("--broker '") + bad +
                         "' is not a broker address: write tcp://HOST:PORT"),
              std::string::npos)
        << r.err;
  }
  auto [env, took] = RunTxmqctl({"status"}, {"TXMQ_BROKER=localhost"});
  EXPECT_EQ(env.exit_code, kExitUsage);
  EXPECT_NE(env.err.find("TXMQ_BROKER 'localhost'"), std::string::npos) << env.err;
}

// A replicated group's nodes, comma-separated, each in any form above;
// a bad entry is named. (Following the leader: TxmqdGroup.*.)
TEST_F(TxmqctlAddress, AListTakesEachFormAndNamesABadEntry) {
  const std::string url = broker_->endpoint();
  // Nothing listens at the first entry: the next one answers.
  const std::string nobody = std::to_string(testing::FreeLoopbackPort());
  auto [r, took] = RunTxmqctl({"--broker", nobody + "," + url.substr(6), "--json", "status"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out)["listen"], url);

  auto [twice, took2] = RunTxmqctl({"--broker", url + "," + url, "status"});
  EXPECT_EQ(twice.exit_code, kExitUsage) << twice.err;
  EXPECT_NE(twice.err.find("'" + url + "', appears twice"), std::string::npos) << twice.err;

  auto [bad, took3] = RunTxmqctl({"--broker", url + ",localhost", "status"});
  EXPECT_EQ(bad.exit_code, kExitUsage) << bad.err;
  EXPECT_NE(bad.err.find("--broker entry 'localhost' is not a broker address"), std::string::npos)
      << bad.err;
}

TEST(TxmqctlExitCodes, HelpDocumentsThem) {
  auto [r, took] = RunTxmqctl({"--help"});
  ASSERT_EQ(r.exit_code, 0);
  for (const char* line : {"0 done", "1 refused or failed", "2 bad usage", "3 broker unreachable",
                           "4 not found", "5 conflict"}) {
    EXPECT_NE(r.out.find(line), std::string::npos) << line << "\n" << r.out;
  }
}

}  // namespace
}  // namespace txmq
