#include "protocol/src/util.h"

#include <pthread.h>
#include <sys/random.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <mutex>

namespace txmq {

int64_t UuidV7Millis(std::string_view id) {
  // xxxxxxxx-xxxx-7xxx-yxxx-xxxxxxxxxxxx: the first 12 hex digits are the time.
  if (id.size() != 36 || id[8] != '-' || id[13] != '-' || id[14] != '7') return -1;
  int64_t ms = 0;
  for (size_t i = 0; i < 13; ++i) {
    if (i == 8) continue;
    const char c = id[i];
    int digit = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
    if (digit < 0) return -1;
    ms = ms * 16 + digit;
  }
  return ms;
}

namespace {

// Fills `out` from the kernel's CSPRNG. getrandom(2) draws per call, so a
// fork()ed child never repeats its parent's bits (a user-space generator
// copied into the child would) and no seed is ever guessable.
void KernelRandom(void* out, size_t size) {
  auto* p = static_cast<unsigned char*>(out);
  while (size > 0) {
    const ssize_t n = getrandom(p, size, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      // Ids are dedup keys: without real randomness two processes could
      // collide and silently drop each other's messages. Refuse to go on.
      std::fprintf(stderr, "txmq: getrandom failed (%s); cannot make unique ids\n",
                   std::strerror(errno));
      std::abort();
    }
    p += n;
    size -= static_cast<size_t>(n);
  }
}

// Random bytes for ids, drawn from the kernel a batch per thread: one
// system call per hundred ids rather than per id. A fork()ed child must
// not hand out bytes its parent drew (it would repeat the parent's next
// ids' random bits), so fork moves the child to a new generation and each
// thread's batch of an older one is drawn afresh.
std::atomic<uint64_t> fork_generation{0};

void IdRandom(void* out, size_t size) {
  static const bool registered = [] {
    pthread_atfork(nullptr, nullptr,
                   [] { fork_generation.fetch_add(1, std::memory_order_relaxed); });
    return true;
  }();
  (void)registered;
  struct Batch {
    uint64_t generation = 0;
    size_t used = sizeof bytes;  // none drawn yet
    unsigned char bytes[1024];
  };
  thread_local Batch batch;
  const uint64_t generation = fork_generation.load(std::memory_order_relaxed);
  if (batch.generation != generation || batch.used + size > sizeof batch.bytes) {
    KernelRandom(batch.bytes, sizeof batch.bytes);
    batch.generation = generation;
    batch.used = 0;
  }
  std::memcpy(out, batch.bytes + batch.used, size);
  batch.used += size;
}

// Writes the low `digits` hex digits of `value` to `out`.
void Hex(uint64_t value, int digits, char* out) {
  static constexpr char kDigits[] = "0123456789abcdef";
  for (int i = digits - 1; i >= 0; --i) {
    out[i] = kDigits[value & 0xf];
    value >>= 4;
  }
}

}  // namespace

std::string NewUuidV7() {
  // 48 bits of Unix ms, then a 12-bit counter (rand_a) that keeps ids from
  // one process ordered inside a millisecond, then 62 random bits (rand_b)
  // from the kernel, never used for another id.
  static std::mutex mu;
  static int64_t last_ms = 0;
  static uint32_t counter = 0;

  struct {
    uint64_t lo;
    uint16_t counter_start;
  } random;
  IdRandom(&random, sizeof random);  // outside the lock: now and then a syscall

  uint64_t hi;
  uint64_t lo;
  {
    std::lock_guard<std::mutex> lock(mu);
    int64_t ms = NowMs();
    if (ms <= last_ms) {
      if (++counter > 0xfff) {  // counter exhausted: borrow the next millisecond
        ++last_ms;
        counter = 0;
      }
      ms = last_ms;
    } else {
      last_ms = ms;
      counter = random.counter_start & 0x3ff;  // random start, room to grow
    }
    hi = (static_cast<uint64_t>(ms) << 16) | 0x7000 | counter;
    lo = (random.lo & 0x3fffffffffffffffull) | 0x8000000000000000ull;
  }
  // xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx
  std::string id(36, '-');
  Hex(hi >> 32, 8, &id[0]);
  Hex(hi >> 16, 4, &id[9]);
  Hex(hi, 4, &id[14]);
  Hex(lo >> 48, 4, &id[19]);
  Hex(lo, 12, &id[24]);
  return id;
}

std::string NewSecretHex(size_t bytes) {
  std::string raw(bytes, '\0');
  KernelRandom(raw.data(), raw.size());
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes * 2);
  for (unsigned char c : raw) {
    out.push_back(kHex[c >> 4]);
    out.push_back(kHex[c & 0xf]);
  }
  return out;
}

void SetThreadName(const char* name) { pthread_setname_np(pthread_self(), name); }

int64_t ParseDurationMs(std::string_view text) {
  if (text.empty()) return -1;
  int64_t total = 0;
  size_t i = 0;
  while (i < text.size()) {
    size_t start = i;
    double value = 0;
    double scale = 0;
    while (i < text.size() && ((text[i] >= '0' && text[i] <= '9') || text[i] == '.')) {
      if (text[i] == '.') {
        if (scale != 0) return -1;
        scale = 1;
      } else if (scale != 0) {
        scale /= 10;
        value += (text[i] - '0') * scale;
      } else {
        value = value * 10 + (text[i] - '0');
      }
      ++i;
    }
    if (i == start) return -1;
    std::string_view unit;
    size_t unit_start = i;
    while (i < text.size() && text[i] >= 'a' && text[i] <= 'z') ++i;
    unit = text.substr(unit_start, i - unit_start);
    double ms;
    if (unit == "ms") {
      ms = value;
    } else if (unit == "s" || unit.empty()) {
      ms = value * 1000;  // a bare number means seconds
    } else if (unit == "m") {
      ms = value * 60'000;
    } else if (unit == "h") {
      ms = value * 3'600'000;
    } else if (unit == "d") {
      ms = value * 86'400'000;
    } else {
      return -1;
    }
    if (unit.empty() && i < text.size()) return -1;
    total += static_cast<int64_t>(ms + 0.5);
  }
  return total;
}

std::string FormatDurationMs(int64_t ms) {
  if (ms < 0) return "-" + FormatDurationMs(-ms);
  char buf[64];
  if (ms < 1000) {
    std::snprintf(buf, sizeof buf, "%lldms", static_cast<long long>(ms));
    return buf;
  }
  if (ms < 60'000) {
    std::snprintf(buf, sizeof buf, "%.1fs", ms / 1000.0);
    std::string s = buf;
    if (s.ends_with(".0s")) s.erase(s.size() - 3, 2);  // "10s", not "10.0s"
    return s;
  }
  // Two units, the smaller left out when it is zero: "1m30s", "2h", "1d".
  struct Unit {
    int64_t ms;
    const char* name;
  };
  static constexpr Unit kUnits[] = {
      {86'400'000, "d"}, {3'600'000, "h"}, {60'000, "m"}, {1000, "s"}};
  size_t i = 0;
  while (ms < kUnits[i].ms) ++i;  // ms >= 60 s here: stops at "m" at the latest
  std::string s = std::to_string(ms / kUnits[i].ms) + kUnits[i].name;
  const int64_t rest = ms % kUnits[i].ms / kUnits[i + 1].ms;
  if (rest != 0) s += std::to_string(rest) + kUnits[i + 1].name;
  return s;
}

std::string OneLineForLog(const std::string& text) {
  std::string out = text.substr(0, 80);
  for (char& c : out) {
    if (c < 0x20 || c > 0x7e) c = '?';
  }
  return out;
}

}  // namespace txmq
