// A fuzz target: libFuzzer's entry point plus well-formed seeds to mutate.
// Built with clang and TXMQ_FUZZ=ON it is a libFuzzer binary; otherwise
// replay_main.cc drives it (seeds, their mutations, random bytes) as an
// ordinary ctest, so every build exercises the decoders with bad input.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

// Well-formed inputs the mutations start from.
std::vector<std::string> FuzzSeeds();
