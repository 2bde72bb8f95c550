// txmqd with CURVE and an ACL, driven by txmqctl the way an operator would:
// keys from txmqctl keygen, a JSON ACL, SIGHUP to revoke a key. Real
// processes, real CURVE over loopback.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "tests/testutil/testutil.h"

namespace txmq {
namespace {

using namespace std::chrono_literals;
using testing::BinPath;
using testing::BrokerProcess;
using testing::CommandResult;
using testing::RunCommand;
using testing::TempDir;
using testing::WaitFor;

bool LogHas(const std::string& path, const std::string& text) {
  return testing::ReadFile(path).find(text) != std::string::npos;
}

// `txmqctl keygen NAME` run in `dir`, as the interface promises: the files
// land in the current directory.
CommandResult Keygen(const TempDir& dir, const std::string& name) {
  return RunCommand(
      {"/bin/sh", "-c",
       "cd '" + dir.path() + "' && exec '" + BinPath("txmqctl") + "' keygen " + name});
}

std::string PublicKey(const TempDir& dir, const std::string& name) {
  std::string key = testing::ReadFile(dir.Sub(name + ".pub"));
  while (!key.empty() && key.back() == '\n') key.pop_back();
  return key;
}

void WriteAcl(const TempDir& dir, const nlohmann::json& principals) {
  std::ofstream(dir.Sub("acl.json.tmp")) << nlohmann::json{{"principals", principals}}.dump(2);
  std::rename(dir.Sub("acl.json.tmp").c_str(), dir.Sub("acl.json").c_str());
}

TEST(TxmqctlKeygen, WritesASecretAndAPublicKeyInTheCurrentDirectoryAndNeverOverwrites) {
  TempDir dir;
  auto made = Keygen(dir, "alice");
  ASSERT_EQ(made.exit_code, 0) << made.err;
  struct stat st;
  ASSERT_EQ(::stat(dir.Sub("alice.key").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(PublicKey(dir, "alice").size(), 40u) << "one Z85 line";
  EXPECT_NE(made.out.find(PublicKey(dir, "alice")), std::string::npos) << made.out;

  const std::string secret = testing::ReadFile(dir.Sub("alice.key"));
  auto again = Keygen(dir, "alice");
  EXPECT_EQ(again.exit_code, 5) << again.err;
  EXPECT_NE(again.err.find("alice.key exists"), std::string::npos) << again.err;
  EXPECT_EQ(testing::ReadFile(dir.Sub("alice.key")), secret) << "the key was overwritten";
}

class TxmqdCurve : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* name : {"broker", "ops", "app", "stranger"}) {
      auto r = Keygen(dir_, name);
      ASSERT_EQ(r.exit_code, 0) << r.err;
    }
    WriteAcl(dir_, Principals(true));
    broker_ = std::make_unique<BrokerProcess>(
        dir_.Sub("data"),
        std::vector<std::string>{"--curve-secret-key", dir_.Sub("broker.key"), "--acl",
                                 dir_.Sub("acl.json"), "--audit-log", dir_.Sub("audit.log")});
    ASSERT_TRUE(broker_->Start());
  }

  nlohmann::json Principals(bool with_app) {
    nlohmann::json p = {{"ops", {{"public_key", PublicKey(dir_, "ops")}, {"admin", true}}}};
    if (with_app) {
      p["app"] = {
          {"public_key", PublicKey(dir_, "app")}, {"produce", {"orders"}}, {"consume", {"audit"}}};
    }
    return p;
  }

  // txmqctl as principal `who` ("" for no keys).
  CommandResult Ctl(const std::string& who, std::vector<std::string> args) {
    std::vector<std::string> argv{BinPath("txmqctl"), "--broker", broker_->endpoint(), "--timeout",
                                  "10s"};
    if (!who.empty()) {
      argv.insert(argv.end(),
                  {"--curve-key", dir_.Sub(who + ".key"), "--server-key", dir_.Sub("broker.pub")});
    }
    argv.insert(argv.end(), args.begin(), args.end());
    return RunCommand(argv, "", 60s);
  }

  TempDir dir_;
  std::unique_ptr<BrokerProcess> broker_;
};

TEST_F(TxmqdCurve, EachCallerIsItsPrincipalAndGetsItsRightsOnly) {
  EXPECT_TRUE(LogHas(broker_->log_path(), "CURVE self-test passed"))
      << testing::ReadFile(broker_->log_path());

  auto plain = Ctl("", {"status"});
  EXPECT_EQ(plain.exit_code, 6) << plain.err;
  EXPECT_NE(plain.err.find("requires CURVE"), std::string::npos) << plain.err;
  auto stranger = Ctl("stranger", {"status"});
  EXPECT_EQ(stranger.exit_code, 6) << stranger.err;
  EXPECT_NE(stranger.err.find("refused this client's CURVE key"), std::string::npos)
      << stranger.err;

  auto sent = Ctl("app", {"send", "orders", "hello"});
  EXPECT_EQ(sent.exit_code, 0) << sent.err;
  auto create = Ctl("app", {"--operator", "root", "topic", "create", "sneaky"});
  EXPECT_EQ(create.exit_code, 6) << create.err;
  EXPECT_NE(create.err.find("PERMISSION_DENIED: principal 'app' may not create topics"),
            std::string::npos)
      << create.err;
  auto other = Ctl("app", {"send", "payments", "x"});
  EXPECT_EQ(other.exit_code, 6) << other.err;

  auto made = Ctl("ops", {"--operator", "root", "topic", "create", "made"});
  EXPECT_EQ(made.exit_code, 0) << made.err;
  EXPECT_TRUE(WaitFor([&] {
    return LogHas(dir_.Sub("audit.log"), "operator='root' principal='ops'") &&
           LogHas(dir_.Sub("audit.log"), "action=topic-create topic=made");
  })) << testing::ReadFile(dir_.Sub("audit.log"));
  EXPECT_TRUE(LogHas(dir_.Sub("audit.log"), "principal='app' client="))
      << "the refused operator command is in the audit trail too\n"
      << testing::ReadFile(dir_.Sub("audit.log"));

  auto got = Ctl("app", {"consume", "orders", "--group", "audit", "--max", "1", "--wait", "10s"});
  EXPECT_EQ(got.exit_code, 0) << got.err;
  EXPECT_NE(got.out.find("hello"), std::string::npos) << got.out;
}

TEST_F(TxmqdCurve, SighupRevokesAKeyAndABadAclKeepsTheOldOne) {
  ASSERT_EQ(Ctl("app", {"send", "orders", "before"}).exit_code, 0);

  WriteAcl(dir_, Principals(false));
  broker_->Signal(SIGHUP);
  ASSERT_TRUE(WaitFor([&] {
    return LogHas(broker_->log_path(), "SIGHUP: reloaded ACL " + dir_.Sub("acl.json"));
  })) << testing::ReadFile(broker_->log_path());
  auto revoked = Ctl("app", {"send", "orders", "after"});
  EXPECT_EQ(revoked.exit_code, 6) << revoked.err;

  std::ofstream(dir_.Sub("acl.json")) << "{\"principals\": {\"ops\": {\"public_key\": \"nope\"}}}";
  broker_->Signal(SIGHUP);
  ASSERT_TRUE(WaitFor([&] { return LogHas(broker_->log_path(), "NOT reloaded"); }))
      << testing::ReadFile(broker_->log_path());
  EXPECT_TRUE(LogHas(broker_->log_path(), "'nope' is not a CURVE key"));
  auto status = Ctl("ops", {"status"});
  EXPECT_EQ(status.exit_code, 0) << "the ACL in force stays: " << status.err;
  EXPECT_EQ(broker_->Stop(SIGTERM), 0);
}

TEST(TxmqdListen, PlaintextOnAReachableAddressNeedsInsecureAndCurveNeedsBothFiles) {
  TempDir dir;
  // Refused before anything binds: nothing listens beyond loopback.
  auto open = RunCommand(
      {BinPath("txmqd"), "--data-dir", dir.Sub("data"), "--listen", "tcp://0.0.0.0:0"}, "", 15s);
  EXPECT_EQ(open.exit_code, 2) << open.err;
  EXPECT_NE(open.err.find("--insecure"), std::string::npos) << open.err;
  EXPECT_NE(open.err.find("--curve-secret-key"), std::string::npos) << open.err;

  auto half = RunCommand({BinPath("txmqd"), "--data-dir", dir.Sub("data"), "--listen",
                          "tcp://127.0.0.1:*", "--curve-secret-key", dir.Sub("broker.key")},
                         "", 15s);
  EXPECT_EQ(half.exit_code, 2) << half.err;
  EXPECT_NE(half.err.find("--curve-secret-key and --acl go together"), std::string::npos)
      << half.err;
}

// HOST:PORT is taken as tcp://HOST:PORT (as txmqctl --broker takes it);
// what is no endpoint at all is refused at once, before the data
// directory is created, let alone checked.
TEST(TxmqdListen, HostAndPortAloneIsTcpAndAnythingElseIsRefusedBeforeTheStoreOpens) {
  TempDir dir;
  auto refused =
      RunCommand({BinPath("txmqd"), "--data-dir", dir.Sub("data"), "--listen", "7953"}, "", 15s);
  EXPECT_EQ(refused.exit_code, 2) << refused.err;
  EXPECT_NE(refused.err.find("--listen '7953' is not tcp://HOST:PORT"), std::string::npos)
      << refused.err;
  EXPECT_EQ(refused.err.find("reachable from other machines"), std::string::npos) << refused.err;
  EXPECT_FALSE(std::filesystem::exists(dir.Sub("data")));

  const std::string host_port = "127.0.0.1:" + std::to_string(testing::FreeLoopbackPort());
  auto broker = testing::Process::Spawn({BinPath("txmqd"), "--data-dir", dir.Sub("data"),
                                         "--listen", host_port, "--ready-file", dir.Sub("ready")},
                                        dir.Sub("txmqd.log"));
  ASSERT_NE(broker, nullptr);
  ASSERT_TRUE(WaitFor([&] { return std::filesystem::exists(dir.Sub("ready")); }, 20s))
      << testing::ReadFile(dir.Sub("txmqd.log"));
  EXPECT_NE(testing::ReadFile(dir.Sub("ready")).find("tcp://" + host_port), std::string::npos)
      << testing::ReadFile(dir.Sub("ready"));
  broker->Signal(SIGTERM);
  EXPECT_EQ(broker->Wait(20s), 0);
}

// A port another program holds is told before the data directory is even
// created (opening and checking a large one can take minutes).
TEST(TxmqdListen, APortInUseIsToldBeforeTheStoreIsOpened) {
  TempDir dir;
  const int port = testing::FreeLoopbackPort();
  const int holder = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(holder, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(holder, reinterpret_cast<const sockaddr*>(&address), sizeof address), 0);
  ASSERT_EQ(::listen(holder, 1), 0);
  const std::string listen = "tcp://127.0.0.1:" + std::to_string(port);
  auto r =
      RunCommand({BinPath("txmqd"), "--data-dir", dir.Sub("data"), "--listen", listen}, "", 15s);
  ::close(holder);
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("cannot listen on " + listen + ": Address already in use"),
            std::string::npos)
      << r.err;
  EXPECT_FALSE(std::filesystem::exists(dir.Sub("data")));
}

// With --insecure it serves in plaintext and says so where an operator
// looks. "tcp://lo:PORT" binds the loopback interface by name: not an
// address the loopback rule knows, so it counts as reachable, yet nothing
// leaves this machine.
TEST(TxmqdListen, InsecurePlaintextOnAReachableAddressIsLoggedAsAWarning) {
  TempDir dir;
  const std::string listen = "tcp://lo:" + std::to_string(testing::FreeLoopbackPort());
  auto refused =
      RunCommand({BinPath("txmqd"), "--data-dir", dir.Sub("data"), "--listen", listen}, "", 15s);
  EXPECT_EQ(refused.exit_code, 2) << refused.err;
  auto broker =
      testing::Process::Spawn({BinPath("txmqd"), "--data-dir", dir.Sub("data"), "--listen", listen,
                               "--insecure", "--ready-file", dir.Sub("ready")},
                              dir.Sub("txmqd.log"));
  ASSERT_NE(broker, nullptr);
  ASSERT_TRUE(WaitFor([&] { return std::filesystem::exists(dir.Sub("ready")); }, 20s))
      << testing::ReadFile(dir.Sub("txmqd.log"));
  const std::string log = testing::ReadFile(dir.Sub("txmqd.log"));
  EXPECT_NE(log.find("in PLAINTEXT with no authentication (--insecure)"), std::string::npos) << log;
  broker->Signal(SIGTERM);
  EXPECT_EQ(broker->Wait(20s), 0);
}

}  // namespace
}  // namespace txmq
