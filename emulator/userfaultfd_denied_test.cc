// A destination where userfaultfd is denied, as a container's seccomp
// profile denies it: the postcopy stream is still read, and the finding says
// why the arena could not take faults. Its own binary, because the seccomp
// filter it installs cannot be removed from the process.
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <linux/userfaultfd.h>
#include <stddef.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

#include <string>
#include <vector>

#include "emulator/replay.h"
#include "gtest/gtest.h"
#include "tests/test_files.h"

namespace qmig {
namespace {

// userfaultfd(2) and ioctl(USERFAULTFD_IOC_NEW) on /dev/userfaultfd fail
// with EPERM; every other system call is allowed.
void DenyUserfaultfd() {
  struct sock_filter filter[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_userfaultfd, 3, 0),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_ioctl, 0, 3),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[1])),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, USERFAULTFD_IOC_NEW, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  struct sock_fprog program = {sizeof(filter) / sizeof(filter[0]), filter};
  ASSERT_EQ(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), 0);
  ASSERT_EQ(prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &program), 0);
  errno = 0;
  EXPECT_EQ(syscall(__NR_userfaultfd, 0), -1);
  EXPECT_EQ(errno, EPERM);
}

TEST(UserfaultfdDeniedTest, PostcopyIsReadAndTheFindingSaysWhy) {
  DenyUserfaultfd();
  std::vector<uint8_t> data =
      testing::ReadFileBytes(testing::RunfilePath("corpus/qemu-7.2/postcopy.mig"));
  MemorySource source(data);
  absl::StatusOr<ReplayResult> result = ReplayStream(source, {});
  ASSERT_TRUE(result.ok()) << result.status();
  const FindingList& findings = result->report.parse.findings;
  ASSERT_EQ(findings.count(FindingCode::kEmuUffdUnavailable), 1u);
  for (const Finding& finding : findings.findings()) {
    if (finding.code != FindingCode::kEmuUffdUnavailable) continue;
    // Each way was tried, and the message says which failed and why.
    EXPECT_NE(finding.message.find("/dev/userfaultfd"), std::string::npos) << finding.message;
    EXPECT_NE(finding.message.find("Operation not permitted"), std::string::npos)
        << finding.message;
    EXPECT_GT(finding.offset, 0u);  // the LISTEN that needed it
  }
  // The stream itself is fine, and was read to its end.
  EXPECT_TRUE(result->report.parse.summary.eof_seen);
  EXPECT_EQ(result->bytes_sent, data.size());
}

}  // namespace
}  // namespace qmig
