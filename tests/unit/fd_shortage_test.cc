// Out of file descriptors: a storage open waits for one instead of
// failing. The tests use up this process's descriptors under a lowered
// RLIMIT_NOFILE and give them back from another thread, as the broker's
// connection guard does when it drops connections over its limit.
#include "storage/src/fd_shortage.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <unistd.h>

#include <thread>
#include <vector>

#include "protocol/src/util.h"
#include "storage/src/db.h"
#include "storage/src/file_system.h"
#include "tests/testutil/testutil.h"

namespace txmq::storage {
namespace {

using namespace std::chrono_literals;

// Lowers the soft descriptor limit and takes every descriptor left;
// Release() gives them back one by one, `every` apart, on its own thread.
class DescriptorHog {
 public:
  DescriptorHog() {
    getrlimit(RLIMIT_NOFILE, &saved_);
    rlimit low = saved_;
    low.rlim_cur = 256;
    EXPECT_EQ(setrlimit(RLIMIT_NOFILE, &low), 0);
    for (int fd; (fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC)) >= 0;) held_.push_back(fd);
    EXPECT_EQ(errno, EMFILE);
  }
  ~DescriptorHog() {
    if (releaser_.joinable()) releaser_.join();
    for (int fd : held_) ::close(fd);
    setrlimit(RLIMIT_NOFILE, &saved_);
  }
  void Release(std::chrono::milliseconds after, std::chrono::milliseconds every, size_t count) {
    releaser_ = std::thread([this, after, every, count] {
      std::this_thread::sleep_for(after);
      for (size_t i = 0; i < count && !held_.empty(); ++i) {
        ::close(held_.back());
        held_.pop_back();
        std::this_thread::sleep_for(every);
      }
    });
  }
  void Join() { releaser_.join(); }

 private:
  rlimit saved_{};
  std::vector<int> held_;
  std::thread releaser_;
};

TEST(DescriptorShortage, ALogSegmentOpenWaitsForADescriptorInsteadOfFailing) {
  testing::TempDir dir;
  const std::string path = dir.Sub("segment");
  const uint64_t waits = DescriptorWaits();
  DescriptorHog hog;
  ASSERT_LT(::open("/dev/null", O_RDONLY), 0) << "the process still has descriptors";
  // One for the file, one to sync its directory.
  hog.Release(300ms, 50ms, 2);
  const auto start = SteadyClock::now();
  auto file = FileSystem::Default()->Open(path, 1 << 20);
  const auto took = SteadyClock::now() - start;
  hog.Join();
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  EXPECT_EQ((*file)->size(), 1u << 20);
  EXPECT_GE(took, 250ms) << "it had to wait for the descriptor";
  EXPECT_GT(DescriptorWaits(), waits);
}

TEST(DescriptorShortage, LevelDbOpensWaitForDescriptorsToo) {
  testing::TempDir dir;
  DescriptorWaitingEnv env(leveldb::Env::Default());
  DbOptions options;
  options.env = &env;
  DescriptorHog hog;
  // LevelDB opens several files (lock, info log, manifest, log): they
  // come back one every 50 ms.
  hog.Release(200ms, 50ms, 16);
  auto db = Db::Open(dir.Sub("index"), options);
  hog.Join();
  ASSERT_TRUE(db.ok()) << db.status().ToString();
  ASSERT_TRUE((*db)->get()->Put({}, "k", "v").ok());
  std::string value;
  ASSERT_TRUE((*db)->get()->Get({}, "k", &value).ok());
  EXPECT_EQ(value, "v");
}

TEST(DescriptorShortage, WithoutWaitingLevelDbFailsAndTheErrorSaysWhy) {
  testing::TempDir dir;
  DbOptions options;  // the plain env: what the broker used to do
  DescriptorHog hog;
  auto db = Db::Open(dir.Sub("index"), options);
  ASSERT_FALSE(db.ok());
  EXPECT_EQ(db.status().code(), StatusCode::kResourceExhausted) << db.status().ToString();
  EXPECT_NE(db.status().message().find("out of file descriptors"), std::string::npos)
      << db.status().ToString();
}

TEST(DescriptorShortage, OnlyEmfileAndEnfileAreAShortage) {
  EXPECT_TRUE(IsDescriptorShortage(EMFILE));
  EXPECT_TRUE(IsDescriptorShortage(ENFILE));
  EXPECT_FALSE(IsDescriptorShortage(ENOSPC));
  EXPECT_FALSE(IsDescriptorShortage(EIO));
  std::string name = "x";
  DescriptorWait wait(name);
  EXPECT_FALSE(wait.Again(ENOSPC)) << "a full disk is not waited out";
}

}  // namespace
}  // namespace txmq::storage
