// Disk full on a real, small file system. txmqd runs in a mount namespace
// of its own (unshare --mount) with a 96 MiB tmpfs on its data directory,
// so the host's mounts are never touched; the network namespace is the
// host's, so clients connect on 127.0.0.1. The tmpfs also holds a 20 MiB
// ballast file, removed later through /proc/<pid>/root (the path as
// txmqd's mount namespace sees it) to free space.
//
// A producer fills the file system until sends are refused with
// RESOURCE_EXHAUSTED; every acknowledged message is still consumed and
// acked, a prepared transaction still commits; once the ballast is gone,
// sends are taken again by themselves. Without the disk watermark the
// broker fills the disk and stops itself (fail-stop), and nobody drains.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>

#include "tests/testutil/admin_client.h"
#include "tests/testutil/testutil.h"
#include "tests/testutil/tx_requests.h"

namespace txmq {
namespace {

using namespace std::chrono_literals;
using testing::AdminClient;
using testing::BinPath;
using testing::WaitFor;

constexpr const char* kUnshare = "/usr/bin/unshare";

size_t Count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

class DiskFull : public ::testing::Test {
 protected:
  void SetUp() override {
    mount_ = dir_.Sub("fs");
    data_ = mount_ + "/data";
    log_ = dir_.Sub("txmqd.log");
    std::filesystem::create_directories(mount_);
    ASSERT_TRUE(std::filesystem::exists(kUnshare))
        << kUnshare << " is missing (Debian package util-linux): this test needs it";
    // sh mounts the tmpfs (only this mount namespace sees it), writes the
    // ballast and becomes txmqd: the pid stays the same throughout.
    const std::string script =
        "mount -t tmpfs -o size=96m txmq-disk-full \"$1\" || exit 97\n"
        "dd if=/dev/zero of=\"$1/ballast\" bs=1M count=20 status=none || exit 98\n"
        "shift\n"
        "exec \"$@\"\n";
    // Room the broker keeps with these sizes: 2 x 8 + 4 x 1 + 25 x 1 = 45
    // MiB, the default --min-free-disk.
    txmqd_ = testing::Process::Spawn({kUnshare,
                                      "--mount",
                                      "--propagation",
                                      "private",
                                      "/bin/sh",
                                      "-c",
                                      script,
                                      "sh",
                                      mount_,
                                      BinPath("txmqd"),
                                      "--data-dir",
                                      data_,
                                      "--listen",
                                      "tcp://127.0.0.1:*",
                                      "--ready-file",
                                      dir_.Sub("ready"),
                                      "--segment-mb",
                                      "8",
                                      "--max-message-bytes",
                                      "1048576",
                                      "--write-buffer-mb",
                                      "1",
                                      "--table-file-mb",
                                      "1"},
                                     log_);
    ASSERT_NE(txmqd_, nullptr);
    const bool up = WaitFor(
        [&] { return txmqd_->Wait(0ms).has_value() || std::filesystem::exists(dir_.Sub("ready")); },
        20s);
    ASSERT_TRUE(up && std::filesystem::exists(dir_.Sub("ready")))
        << "txmqd did not start on a private tmpfs. This test needs to make a mount namespace "
           "and mount a tmpfs in it (root, or CAP_SYS_ADMIN; `unshare --mount` permitted); "
           "exit code "
        << txmqd_->Wait(0ms).value_or(-1) << " (97: mount failed, 98: ballast), output:\n"
        << testing::ReadFile(log_);
    endpoint_ = testing::ReadFile(dir_.Sub("ready"));
    while (!endpoint_.empty() && endpoint_.back() == '\n') endpoint_.pop_back();
    admin_ = std::make_unique<AdminClient>(endpoint_);
  }

  void TearDown() override {
    if (txmqd_) {
      txmqd_->Signal(SIGTERM);
      txmqd_->Wait(30s);
    }
  }

  Status Send(const std::string& id, const std::string& body) {
    return admin_
        ->Call([&](wire::Envelope::Builder e) {
          auto m = e.initSend().initMessage();
          m.setId(id);
          m.setTopic("orders");
          m.setBody(wire::AsData(body));
        })
        .status();
  }

  nlohmann::json CtlStatus() {
    auto r = testing::RunCommand({BinPath("txmqctl"), "--broker", endpoint_, "--json", "status"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return r.exit_code == 0 ? nlohmann::json::parse(r.out) : nlohmann::json::object();
  }

  // Pulls and acks as `group` until nothing comes for a while.
  std::set<std::string> DrainAndAck(const std::string& group) {
    std::set<std::string> ids;
    for (int empty = 0; empty < 3;) {
      auto r = admin_->Call([&](wire::Envelope::Builder e) {
        auto p = e.initPull();
        p.setGroup(group);
        p.initTopics(1).set(0, "orders");
        p.setMaxMessages(64);
        p.setWaitMs(300);
      });
      EXPECT_TRUE(r.ok()) << r.status().ToString();
      if (!r.ok()) break;
      auto messages = r->envelope().getPullOk().getMessages();
      if (messages.size() == 0) {
        ++empty;
        continue;
      }
      auto ack = admin_->Call([&](wire::Envelope::Builder e) {
        auto a = e.initAck();
        a.setGroup(group);
        auto receipts = a.initReceipts(messages.size());
        for (unsigned i = 0; i < messages.size(); ++i) {
          receipts.setWithCaveats(i, messages[i].getReceipt());
          ids.insert(wire::ToString(messages[i].getMessage().getId()));
        }
      });
      EXPECT_TRUE(ack.ok()) << ack.status().ToString();
      if (ack.ok()) {
        EXPECT_EQ(ack->envelope().getAckOk().getAcked(), messages.size());
      }
    }
    return ids;
  }

  testing::TempDir dir_;
  std::string mount_, data_, log_, endpoint_;
  std::unique_ptr<testing::Process> txmqd_;
  std::unique_ptr<AdminClient> admin_;
};

TEST_F(DiskFull, SendsAreRefusedWhileConsumersDrainAndTransactionsEndThenResume) {
  ASSERT_TRUE(
      testing::SendHalf(*admin_, "disk-tx", "shop", {{.id = "h-disk", .topic = "orders"}}).ok());

  // Fill: 64 KiB messages until the broker refuses. 96 MiB can hold no
  // more than ~1500 of them; the bound only ends a broken run.
  const std::string body(64 * 1024, 'x');
  std::set<std::string> acked;
  Status refused;
  for (int i = 0; i < 3000 && refused.ok(); ++i) {
    const std::string id = "fill-" + std::to_string(i);
    refused = Send(id, body);
    if (refused.ok()) acked.insert(id);
  }
  ASSERT_EQ(refused.code(), StatusCode::kResourceExhausted)
      << refused.ToString() << "\nafter " << acked.size() << " sends; txmqd log:\n"
      << testing::ReadFile(log_);
  EXPECT_GT(acked.size(), 100u);
  EXPECT_NE(refused.message().find("--min-free-disk 45.0 MiB"), std::string::npos)
      << refused.ToString();
  EXPECT_NE(refused.message().find("'" + data_ + "'"), std::string::npos) << refused.ToString();
  EXPECT_FALSE(txmqd_->Wait(0ms).has_value()) << "txmqd exited";

  auto status = CtlStatus();
  EXPECT_EQ(status["disk_low"], true) << status.dump();
  EXPECT_EQ(status["storage_healthy"], true) << status.dump();
  EXPECT_LT(status["disk_free_bytes"].get<uint64_t>(), 45u << 20) << status.dump();

  // The transaction still ends, every acknowledged message is still there
  // and acks are taken.
  auto committed = admin_->End("disk-tx", true);
  ASSERT_TRUE(committed.ok()) << committed.status().ToString();
  EXPECT_EQ(*committed, wire::TxState::COMMITTED);
  std::set<std::string> expected = acked;
  expected.insert("h-disk");
  EXPECT_EQ(DrainAndAck("billing"), expected);
  EXPECT_TRUE(DrainAndAck("billing").empty()) << "acked messages came back";
  EXPECT_EQ(Send("still-full", body).code(), StatusCode::kResourceExhausted);

  // Free 20 MiB inside txmqd's mount namespace: sends resume by themselves.
  const std::string ballast =
      "/proc/" + std::to_string(txmqd_->pid()) + "/root" + mount_ + "/ballast";
  ASSERT_TRUE(std::filesystem::remove(ballast)) << ballast;
  ASSERT_TRUE(WaitFor([&] { return Send("after", body).ok(); }, 20s))
      << "sends not taken again; txmqd log:\n"
      << testing::ReadFile(log_);
  EXPECT_EQ(CtlStatus()["disk_low"], false);
  EXPECT_EQ(DrainAndAck("billing"), (std::set<std::string>{"after"}));

  txmqd_->Signal(SIGTERM);
  EXPECT_EQ(txmqd_->Wait(30s), 0) << testing::ReadFile(log_);
  txmqd_.reset();
  const std::string log = testing::ReadFile(log_);
  EXPECT_EQ(Count(log, "disk space low:"), 1u) << log;
  EXPECT_EQ(Count(log, "disk space recovered:"), 1u) << log;
  EXPECT_EQ(Count(log, "storage write failed"), 0u) << log;
}

}  // namespace
}  // namespace txmq
