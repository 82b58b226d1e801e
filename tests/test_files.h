// Helpers for tests that read files shipped as Bazel data.
#ifndef QMIG_TESTS_TEST_FILES_H_
#define QMIG_TESTS_TEST_FILES_H_

#include <string>
#include <vector>

namespace qmig::testing {

// Absolute path of a file in the workspace, from inside a Bazel test.
std::string RunfilePath(const std::string& workspace_relative);
// The whole file; fails the test (and returns empty) when it cannot be read.
std::vector<uint8_t> ReadFileBytes(const std::string& path);
// Names of the files in a directory that end with `suffix`, sorted.
std::vector<std::string> ListFiles(const std::string& directory, const std::string& suffix);

}  // namespace qmig::testing

#endif  // QMIG_TESTS_TEST_FILES_H_
