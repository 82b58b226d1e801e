// main() for running a fuzz target without a fuzzing engine: feeds each file
// named on the command line, or found under a named directory (recursively,
// in sorted order), to LLVMFuzzerTestOneInput once. This is how `bazel test`
// replays seed corpora and regression files in the default g++ build, and how
// a reproducer is rerun under a debugger.
//
// `--optional=PATH` names a file or directory that may be absent (a
// regression directory that holds no file yet). Other arguments starting with
// '-' are libFuzzer flags and are ignored.
//
// Exit status: 0 when every input ran, 1 when a path cannot be read; a
// crashing input crashes this process, as it would crash the fuzzer.
#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);
// Optional in a target, as with libFuzzer.
extern "C" int LLVMFuzzerInitialize(int* argc, char*** argv) __attribute__((weak));

namespace {

bool CollectFiles(const std::string& path, std::vector<std::string>* files) {
  struct stat info;
  if (stat(path.c_str(), &info) != 0) {
    std::fprintf(stderr, "replay: cannot stat %s\n", path.c_str());
    return false;
  }
  if (!S_ISDIR(info.st_mode)) {
    files->push_back(path);
    return true;
  }
  DIR* dir = opendir(path.c_str());
  if (dir == nullptr) {
    std::fprintf(stderr, "replay: cannot open directory %s\n", path.c_str());
    return false;
  }
  std::vector<std::string> entries;
  while (dirent* entry = readdir(dir)) {
    std::string name = entry->d_name;
    if (name != "." && name != "..") entries.push_back(path + "/" + name);
  }
  closedir(dir);
  std::sort(entries.begin(), entries.end());
  bool ok = true;
  for (const std::string& entry : entries) ok = CollectFiles(entry, files) && ok;
  return ok;
}

}  // namespace

int main(int argc, char** argv) {
  if (LLVMFuzzerInitialize != nullptr) LLVMFuzzerInitialize(&argc, &argv);
  std::vector<std::string> files;
  bool ok = true;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    constexpr char kOptional[] = "--optional=";
    if (arg.rfind(kOptional, 0) == 0) {
      std::string path = arg.substr(sizeof(kOptional) - 1);
      struct stat info;
      if (stat(path.c_str(), &info) == 0) ok = CollectFiles(path, &files) && ok;
      continue;
    }
    if (arg.size() > 1 && arg[0] == '-') continue;  // libFuzzer flags: ignored here
    ok = CollectFiles(arg, &files) && ok;
  }
  for (const std::string& file : files) {
    std::ifstream in(file, std::ios::binary);
    std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)),
                               std::istreambuf_iterator<char>());
    if (!in.good() && !in.eof()) {
      std::fprintf(stderr, "replay: cannot read %s\n", file.c_str());
      ok = false;
      continue;
    }
    std::fprintf(stderr, "replay: %s (%zu bytes)\n", file.c_str(), bytes.size());
    // A heap copy of exactly the input's size, as libFuzzer passes it, so
    // that ASan reports a read one byte past the input.
    std::unique_ptr<uint8_t[]> exact(new uint8_t[bytes.size()]);
    std::copy(bytes.begin(), bytes.end(), exact.get());
    LLVMFuzzerTestOneInput(exact.get(), bytes.size());
  }
  std::fprintf(stderr, "replay: %zu inputs\n", files.size());
  return ok ? 0 : 1;
}
