// mutate_stream INPUT OUTDIR COUNT [SEED] [STACK]: writes COUNT structural
// mutants of the migration stream INPUT to OUTDIR, each made by 1..STACK
// (default 3) calls of the structure-aware mutator, deterministically from
// SEED (default 1). Named mutant-SEED-N.mig, with the mutations applied in
// mutant-SEED-N.txt. For driving real destinations with mutants
// (tools/fuzz_qemu.py), outside libFuzzer.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <iterator>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "fuzz/stream_mutator.h"

int main(int argc, char** argv) {
  if (argc < 4) {
    std::cerr << "usage: mutate_stream INPUT OUTDIR COUNT [SEED] [STACK]\n";
    return 2;
  }
  std::ifstream in(argv[1], std::ios::binary);
  std::vector<uint8_t> input((std::istreambuf_iterator<char>(in)),
                             std::istreambuf_iterator<char>());
  if (!in.eof() && !in.good()) {
    std::cerr << "mutate_stream: cannot read " << argv[1] << "\n";
    return 2;
  }
  const std::string outdir = argv[2];
  const long count = std::strtol(argv[3], nullptr, 10);
  const unsigned seed = argc > 4 ? static_cast<unsigned>(std::strtoul(argv[4], nullptr, 10)) : 1;
  const long stack = argc > 5 ? std::strtol(argv[5], nullptr, 10) : 3;
  // Room for records the mutator inserts.
  const size_t max_size = input.size() * 2 + (64 << 10);
  for (long n = 0; n < count; ++n) {
    std::vector<uint8_t> data = input;
    data.resize(max_size);
    size_t size = input.size();
    std::string applied;
    const long rounds = 1 + (seed + n) % stack;
    for (long r = 0; r < rounds; ++r) {
      qmig::fuzz::Mutation mutation;
      size = qmig::fuzz::MutateStream(data.data(), size, max_size,
                                      seed * 1000003u + static_cast<unsigned>(n * 31 + r), nullptr,
                                      &mutation);
      absl::StrAppend(&applied, qmig::fuzz::MutationName(mutation), "\n");
    }
    const std::string base = absl::StrCat(outdir, "/mutant-", seed, "-", n);
    std::ofstream out(base + ".mig", std::ios::binary);
    out.write(reinterpret_cast<const char*>(data.data()), static_cast<std::streamsize>(size));
    std::ofstream notes(base + ".txt");
    notes << applied;
    if (!out || !notes) {
      std::cerr << "mutate_stream: cannot write " << base << "\n";
      return 2;
    }
  }
  return 0;
}
