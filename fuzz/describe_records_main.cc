// Prints each file's records as the structure-aware mutator sees them
// (fuzz/stream_records.h), one line per record, packages indented:
//   bazel run //fuzz:describe_records -- FILE...
#include <cstdio>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "fuzz/stream_records.h"

int main(int argc, char** argv) {
  int status = 0;
  for (int i = 1; i < argc; ++i) {
    std::ifstream in(argv[i], std::ios::binary);
    if (!in) {
      std::fprintf(stderr, "describe_records: cannot read %s\n", argv[i]);
      status = 1;
      continue;
    }
    std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)),
                               std::istreambuf_iterator<char>());
    std::string text = qmig::fuzz::DescribeRecords(qmig::fuzz::DecodeRecords(bytes));
    std::printf("%s (%zu bytes):\n%s", argv[i], bytes.size(), text.c_str());
  }
  return status;
}
