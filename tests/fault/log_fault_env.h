// A LevelDB file layer whose write-ahead log (the *.log files) can fail or
// stall on demand, for a LocalStore in a fault test or in
// txmq-test-localtool:
//
//   LogFaultEnv env;
//   auto store = LocalStore::Impl::Open(dir, {}, &env);
//   env.FailAppends(true);     // every write of the store fails (IOError), nothing is written
//   env.StallAppends([] {});   // the next write calls back and never returns
//
// Only log appends are touched: table files, the manifest and LevelDB's
// own LOG are written as usual, so LevelDB itself never sees a failed
// background write. A failed append writes nothing, as a full disk that
// refuses the write would; LevelDB then fails that Write and goes on.
//
// Thread safety: safe to use from several threads.
#pragma once

#include <leveldb/env.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

namespace txmq::testing {

class LogFaultEnv final : public leveldb::EnvWrapper {
 public:
  LogFaultEnv() : leveldb::EnvWrapper(leveldb::Env::Default()) {}

  // While on, every append to the log fails.
  void FailAppends(bool on) { fail_ = on; }
  // The next append to the log runs `stalled` and then blocks forever (the
  // process is to be killed there, its write never made).
  void StallAppends(std::function<void()> stalled) {
    std::lock_guard<std::mutex> lock(mu_);
    stalled_ = std::move(stalled);
    stall_ = true;
  }
  // Appends refused so far.
  int failed_appends() const { return failed_; }

  leveldb::Status NewWritableFile(const std::string& name, leveldb::WritableFile** out) override {
    return Wrap(name, target()->NewWritableFile(name, out), out);
  }
  leveldb::Status NewAppendableFile(const std::string& name, leveldb::WritableFile** out) override {
    return Wrap(name, target()->NewAppendableFile(name, out), out);
  }

 private:
  class File final : public leveldb::WritableFile {
   public:
    File(LogFaultEnv* env, leveldb::WritableFile* base) : env_(env), base_(base) {}
    leveldb::Status Append(const leveldb::Slice& data) override {
      if (leveldb::Status s = env_->BeforeAppend(); !s.ok()) return s;
      return base_->Append(data);
    }
    leveldb::Status Close() override { return base_->Close(); }
    leveldb::Status Flush() override { return base_->Flush(); }
    leveldb::Status Sync() override { return base_->Sync(); }

   private:
    LogFaultEnv* env_;
    std::unique_ptr<leveldb::WritableFile> base_;
  };

  leveldb::Status Wrap(const std::string& name, leveldb::Status s, leveldb::WritableFile** out) {
    if (s.ok() && name.size() > 4 && name.ends_with(".log")) *out = new File(this, *out);
    return s;
  }

  leveldb::Status BeforeAppend() {
    std::function<void()> stalled;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stall_) stalled = stalled_;
    }
    if (stalled) {
      stalled();
      while (true) std::this_thread::sleep_for(std::chrono::seconds(1));
    }
    if (fail_) {
      ++failed_;
      return leveldb::Status::IOError("log append refused (LogFaultEnv: injected write failure)");
    }
    return leveldb::Status::OK();
  }

  std::atomic<bool> fail_{false};
  std::atomic<int> failed_{0};
  std::mutex mu_;
  bool stall_ = false;               // guarded by mu_
  std::function<void()> stalled_{};  // guarded by mu_
};

}  // namespace txmq::testing
