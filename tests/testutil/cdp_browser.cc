#include "tests/testutil/cdp_browser.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

namespace txmq::testing {

Result<std::unique_ptr<CdpBrowser>> CdpBrowser::Launch() {
  // A browser that died makes our writes fail with EPIPE, not kill the test.
  signal(SIGPIPE, SIG_IGN);
  std::unique_ptr<CdpBrowser> b(new CdpBrowser());
  b->dir_ = std::make_unique<TempDir>();
  int commands[2], replies[2];
  if (pipe2(commands, O_CLOEXEC) != 0 || pipe2(replies, O_CLOEXEC) != 0) {
    return Status::Unavailable(std::string("pipe: ") + std::strerror(errno));
  }
  const char* env = std::getenv("TXMQ_CHROMIUM");
  const std::string binary = env != nullptr && *env != '\0' ? env : "chromium";
  const std::string profile = "--user-data-dir=" + b->dir_->Sub("profile");
  const std::string log = b->dir_->Sub("browser.log");
  std::vector<std::string> args = {binary,
                                   "--headless=new",
                                   "--remote-debugging-pipe",
                                   "--no-sandbox",
                                   profile,
                                   "--no-first-run",
                                   "--disable-gpu",
                                   "--no-default-browser-check",
                                   "--disable-extensions",
                                   "about:blank"};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  const pid_t pid = fork();
  if (pid < 0) return Status::Unavailable(std::string("fork: ") + std::strerror(errno));
  if (pid == 0) {
    setpgid(0, 0);
    // Out of the way of 3 and 4 first: a pipe may already sit there.
    const int in = fcntl(commands[0], F_DUPFD, 10), out = fcntl(replies[1], F_DUPFD, 10);
    dup2(in, 3);
    dup2(out, 4);
    const int log_fd = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (log_fd >= 0) {
      dup2(log_fd, 1);
      dup2(log_fd, 2);
    }
    execvp(argv[0], argv.data());
    _exit(127);
  }
  setpgid(pid, pid);  // also here: no race with the child's own call
  b->pid_ = pid;
  close(commands[0]);
  close(replies[1]);
  b->to_browser_ = commands[1];
  b->from_browser_ = replies[0];
  // The browser is ready when it answers.
  auto version =
      b->Call("Browser.getVersion", nlohmann::json::object(), "", std::chrono::seconds(30));
  if (!version.ok()) {
    return Status::Unavailable("chromium did not answer: " + version.status().message() +
                               "\nits log:\n" + b->log());
  }
  return b;
}

CdpBrowser::~CdpBrowser() {
  if (to_browser_ >= 0) close(to_browser_);
  if (from_browser_ >= 0) close(from_browser_);
  if (pid_ > 0) {
    kill(-pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    // Its helpers (renderer, zygote) are in the group too; give them a
    // moment to go before the profile directory is removed.
    for (int i = 0; i < 100 && kill(-pid_, 0) == 0; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
}

std::string CdpBrowser::log() const { return ReadFile(dir_->Sub("browser.log")); }

Result<nlohmann::json> CdpBrowser::Read(std::chrono::steady_clock::time_point deadline) {
  while (true) {
    if (const size_t end = pending_.find('\0'); end != std::string::npos) {
      auto message = nlohmann::json::parse(pending_.substr(0, end), nullptr, false);
      pending_.erase(0, end + 1);
      if (message.is_discarded())
        return Status::Corruption("the browser sent a message that is not JSON");
      return message;
    }
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return Status::Timeout("no message from the browser in time");
    pollfd p{from_browser_, POLLIN, 0};
    const int ready = poll(&p, 1, static_cast<int>(left.count()));
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) continue;
    char buf[65536];
    const ssize_t n = read(from_browser_, buf, sizeof buf);
    if (n == 0) return Status::Unavailable("the browser closed its pipe (it exited?)");
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::Unavailable(std::string("reading from the browser: ") + std::strerror(errno));
    }
    pending_.append(buf, static_cast<size_t>(n));
  }
}

Result<nlohmann::json> CdpBrowser::Call(const std::string& method, const nlohmann::json& params,
                                        const std::string& session,
                                        std::chrono::milliseconds timeout) {
  const uint64_t id = ++next_id_;
  nlohmann::json command = {{"id", id}, {"method", method}, {"params", params}};
  if (!session.empty()) command["sessionId"] = session;
  const std::string bytes = command.dump() + '\0';
  for (size_t done = 0; done < bytes.size();) {
    const ssize_t n = write(to_browser_, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0)
      return Status::Unavailable(std::string("writing to the browser: ") + std::strerror(errno));
    done += static_cast<size_t>(n);
  }
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    auto message = Read(deadline);
    if (!message.ok())
      return Status(message.status().code(), method + ": " + message.status().message());
    // Events (no id) and late replies to other calls are not ours.
    if (!message->contains("id") || (*message)["id"] != id) continue;
    if (message->contains("error")) {
      return Status::Internal(method + " failed: " + (*message)["error"].dump());
    }
    return (*message)["result"];
  }
}

Result<std::string> CdpBrowser::OpenPage(const std::string& url) {
  auto target = Call("Target.createTarget", {{"url", "about:blank"}});
  if (!target.ok()) return target.status();
  auto attached =
      Call("Target.attachToTarget", {{"targetId", (*target)["targetId"]}, {"flatten", true}});
  if (!attached.ok()) return attached.status();
  const std::string session = (*attached)["sessionId"];
  if (auto s = Call("Page.enable", nlohmann::json::object(), session); !s.ok()) return s.status();
  auto navigated = Call("Page.navigate", {{"url", url}}, session);
  if (!navigated.ok()) return navigated.status();
  if (navigated->contains("errorText")) {
    return Status::Unavailable("cannot open " + url + ": " + (*navigated)["errorText"].dump());
  }
  return session;
}

Result<nlohmann::json> CdpBrowser::Evaluate(const std::string& session,
                                            const std::string& expression) {
  auto r =
      Call("Runtime.evaluate",
           {{"expression", expression}, {"returnByValue", true}, {"awaitPromise", true}}, session);
  if (!r.ok()) return r.status();
  if (r->contains("exceptionDetails")) {
    return Status::Internal("the page threw: " + (*r)["exceptionDetails"].dump());
  }
  const auto& result = (*r)["result"];
  return result.contains("value") ? result["value"] : nlohmann::json();
}

bool CdpBrowser::WaitUntil(const std::string& session, const std::string& expression,
                           std::chrono::milliseconds timeout) {
  return WaitFor(
      [&] {
        auto v = Evaluate(session, "!!(" + expression + ")");
        return v.ok() && v->is_boolean() && v->get<bool>();
      },
      timeout);
}

}  // namespace txmq::testing
