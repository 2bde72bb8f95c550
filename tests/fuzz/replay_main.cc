// Drives a fuzz target without libFuzzer: every file named on the command
// line, then the target's seeds, then mutations of them (bit flips,
// truncations, splices, overwritten lengths) and random buffers, from a
// fixed PRNG seed so a failure reproduces. Exits non-zero only by crashing
// (or by the sanitizers).
#include <cstdio>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>

#include "tests/fuzz/fuzz_target.h"

namespace {

void Run(const std::string& input) {
  LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(input.data()), input.size());
}

std::string Mutate(const std::string& seed, const std::vector<std::string>& seeds,
                   std::mt19937_64& rng) {
  std::string s = seed;
  auto pick = [&](size_t n) { return n == 0 ? 0 : static_cast<size_t>(rng() % n); };
  switch (rng() % 6) {
    case 0:  // flip some bits
      for (int i = 0, n = 1 + static_cast<int>(rng() % 8); i < n && !s.empty(); ++i) {
        s[pick(s.size())] ^= static_cast<char>(1u << (rng() % 8));
      }
      break;
    case 1:  // truncate
      s.resize(pick(s.size() + 1));
      break;
    case 2: {  // overwrite a word with an extreme value (lengths, pointers)
      static const uint64_t kValues[] = {
          0, 1, 0xffffffffull, 0x7fffffffffffffffull, ~0ull, 0xfffffffcull, 0x100000000ull};
      if (s.size() >= 8) {
        uint64_t v = kValues[rng() % std::size(kValues)];
        std::memcpy(&s[pick(s.size() / 8) * 8], &v, 8);
      }
      break;
    }
    case 3: {  // splice with another seed
      const std::string& other = seeds[pick(seeds.size())];
      s = s.substr(0, pick(s.size() + 1)) + other.substr(pick(other.size() + 1));
      break;
    }
    case 4:  // random garbage appended
      for (int i = 0, n = static_cast<int>(rng() % 64); i < n; ++i)
        s.push_back(static_cast<char>(rng()));
      break;
    default: {  // pure random bytes, word-sized
      s.assign((rng() % 64) * 8, '\0');
      for (auto& c : s) c = static_cast<char>(rng());
    }
  }
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    std::ifstream in(argv[i], std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    Run(ss.str());
  }
  const std::vector<std::string> seeds = FuzzSeeds();
  for (const auto& s : seeds) Run(s);
  std::mt19937_64 rng(20261127);
  const int iterations = 200'000;
  for (int i = 0; i < iterations; ++i) Run(Mutate(seeds[rng() % seeds.size()], seeds, rng));
  std::printf("%zu seeds and %d mutations: no crash\n", seeds.size(), iterations);
  return 0;
}
