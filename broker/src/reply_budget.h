// Bytes of frames the broker has handed to the network for each client and
// that have not left the process yet.
//
// ZeroMQ bounds a peer's outgoing queue in messages only, so a client that
// asks for big replies (msg show of a 4 MiB message, full pulls) and never
// reads them makes the broker hold them all. Every frame the broker sends
// is therefore reserved here first (Reserve) and carries the reservation
// (ReplyTicket) with its bytes; the link releases it when the bytes are
// gone: ZeroMQ calls the message's free function once it wrote the frame
// to the kernel or dropped it with its connection. So `queued` is what the
// broker still holds for a client, whatever ZeroMQ does with it.
//
// Threads: Reserve, Sweep and the reports run on the core thread; a ticket
// is released on whichever thread frees its frame (a ZeroMQ I/O thread), so
// the counters a ticket touches are atomics it co-owns: they outlive the
// budget if a frame does (a socket closing with frames still queued).
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "txmq/status.h"

namespace txmq::broker {

// Bytes one client (or all of them) has waiting.
struct QueuedBytes {
  std::atomic<uint64_t> bytes{0};
};

// A reservation of `bytes` for one frame; released (once) when destroyed.
// Movable, not copyable. Thread safety: one owner at a time; may be
// destroyed on any thread.
class ReplyTicket {
 public:
  ReplyTicket() = default;
  ReplyTicket(std::shared_ptr<QueuedBytes> client, std::shared_ptr<QueuedBytes> total,
              uint64_t bytes);
  ~ReplyTicket() { Release(); }
  ReplyTicket(ReplyTicket&& other) noexcept;
  ReplyTicket& operator=(ReplyTicket&& other) noexcept;
  ReplyTicket(const ReplyTicket&) = delete;
  ReplyTicket& operator=(const ReplyTicket&) = delete;

  uint64_t bytes() const { return bytes_; }
  void Release();

 private:
  std::shared_ptr<QueuedBytes> client_;
  std::shared_ptr<QueuedBytes> total_;
  uint64_t bytes_ = 0;
};

// Thread safety: the core thread only (tickets excepted, see above).
class ReplyBudget {
 public:
  // An error frame that replaces a refused reply may exceed the limits by
  // this much, so a client that reads slowly still learns why.
  static constexpr uint64_t kErrorSlack = 64 * 1024;

  ReplyBudget(uint64_t per_client, uint64_t total);

  enum class Over { kNone, kPerClient, kTotal };
  // Room for a frame of `bytes` to `client`: a ticket, or OVERLOADED naming
  // the limit (and `*over` says which). A frame fits its client's budget
  // when nothing is queued for the client (so one frame of any size gets
  // through); it fits the total when the total has room, or, for a client
  // with nothing queued, a reserve of one client's budget beyond it. So the
  // process holds at most total + per_client (+ slack), and clients that
  // read are not starved by those that do not. With `is_error`, the slack
  // applies.
  // `label` names the client in the error ("principal 'billing'"); empty:
  // "client '<client>'".
  Result<ReplyTicket> Reserve(const std::string& client, uint64_t bytes, bool is_error = false,
                              Over* over = nullptr, std::string_view label = {});

  // Forgets up to `budget` idle clients (nothing queued, no ticket alive),
  // continuing where the last call stopped: bounded work per call.
  void Sweep(size_t budget);

  uint64_t total_queued() const { return total_->bytes.load(std::memory_order_relaxed); }
  // The most any one client has queued now (for status; O(clients)).
  uint64_t largest_queued() const;
  uint64_t queued_for(const std::string& client) const;
  size_t clients_known() const { return clients_.size(); }

 private:
  const uint64_t per_client_;
  const uint64_t total_limit_;
  std::shared_ptr<QueuedBytes> total_ = std::make_shared<QueuedBytes>();
  std::map<std::string, std::shared_ptr<QueuedBytes>, std::less<>> clients_;
  std::string sweep_after_;
};

}  // namespace txmq::broker
