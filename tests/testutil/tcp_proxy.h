// A loopback TCP proxy whose link a test can cut: the network faults of the
// cluster tests (this kernel has no netem). Point a client at port() and
// it reaches `target_port` through the proxy; Blackhole() then stops every
// byte both ways without closing anything (a partition: peers learn of it
// only by their own timeouts), and Heal() closes the held connections and
// forwards again, so clients reconnect afresh.
//
// Thread "tcp-proxy" owns the sockets: the listener and every pair of
// accepted and upstream connections. The mode is an atomic the thread
// reads each turn.
//
// Thread safety: every method may be called from any thread; the
// destructor stops the thread and closes everything.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <thread>

namespace txmq::testing {

class TcpProxy {
 public:
  // Listens on a free loopback port; null (with a test failure) if it
  // cannot.
  static std::unique_ptr<TcpProxy> Start(int target_port);
  ~TcpProxy();
  TcpProxy(const TcpProxy&) = delete;
  TcpProxy& operator=(const TcpProxy&) = delete;

  int port() const { return port_; }
  // Both return once the proxy thread works in the new mode: after
  // Blackhole() not one more byte passes.
  void Blackhole() { Switch(kBlackhole); }
  void Heal() { Switch(kHealing); }
  // Bytes forwarded so far, both ways.
  uint64_t forwarded() const { return forwarded_; }

 private:
  enum Mode { kForward, kBlackhole, kHealing };
  TcpProxy(int listen_fd, int port, int target_port);
  void Loop();
  void Switch(int mode);

  const int listen_fd_;
  const int port_;
  const int target_port_;
  std::atomic<int> mode_{kForward};
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> forwarded_{0};
  std::atomic<uint64_t> turns_{0};  // loop turns finished
  std::thread thread_;
};

}  // namespace txmq::testing
