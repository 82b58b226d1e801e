// Helpers for bench_check.sh, in C so that interpreter start-up is not timed.
//
//   io_probe pread FILE [MiB]   reads FILE with pread(2) of MiB (default 1)
//                               into one page-aligned buffer: the read-only
//                               baseline, what copying the file out costs
//   io_probe faults FILE        prints what a first touch of a mapped page
//                               costs against copying a page with pread, and
//                               the bare cost of a page fault (anonymous
//                               memory, zero page), so that a run shows
//                               whether page faults are expensive here
//
// Build: cc -O2 -o io_probe io_probe.c
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static double Now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void* AlignedBuffer(size_t bytes) {
  void* buffer = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (buffer == MAP_FAILED) {
    perror("io_probe: mmap");
    exit(2);
  }
  memset(buffer, 0, bytes);  // fault it in before timing anything
  return buffer;
}

// Reads [0, length) of fd with pread of `block` bytes; returns seconds.
static double PreadLoop(int fd, uint64_t length, size_t block) {
  unsigned char* buffer = AlignedBuffer(block);
  double start = Now();
  uint64_t offset = 0;
  while (offset < length) {
    size_t want = length - offset < block ? (size_t)(length - offset) : block;
    ssize_t n = pread(fd, buffer, want, (off_t)offset);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      perror("io_probe: pread");
      exit(2);
    }
    if (n == 0) break;
    offset += (uint64_t)n;
  }
  double seconds = Now() - start;
  munmap(buffer, block);
  return seconds;
}

// Touches one byte per page of [0, length) of a fresh private mapping of fd
// (fd < 0: anonymous memory); returns seconds.
static double TouchMapping(int fd, uint64_t length) {
  unsigned char* map = mmap(NULL, length, PROT_READ, fd < 0 ? MAP_PRIVATE | MAP_ANONYMOUS
                                                           : MAP_PRIVATE, fd, 0);
  if (map == MAP_FAILED) {
    perror("io_probe: mmap");
    exit(2);
  }
  volatile unsigned sum = 0;
  double start = Now();
  for (uint64_t at = 0; at < length; at += 4096) sum += map[at];
  double seconds = Now() - start;
  munmap(map, length);
  return seconds;
}

static int Compare(const void* a, const void* b) {
  double x = *(const double*)a, y = *(const double*)b;
  return x < y ? -1 : x > y;
}

int main(int argc, char** argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: io_probe pread FILE [MiB] | io_probe faults FILE\n");
    return 2;
  }
  int fd = open(argv[2], O_RDONLY | O_CLOEXEC);
  struct stat st;
  if (fd < 0 || fstat(fd, &st) != 0) {
    perror(argv[2]);
    return 2;
  }
  uint64_t size = (uint64_t)st.st_size;
  if (strcmp(argv[1], "pread") == 0) {
    size_t block = (size_t)(argc > 3 ? atoi(argv[3]) : 1) << 20;
    if (block == 0) block = 1 << 20;
    PreadLoop(fd, size, block);
    return 0;
  }
  if (strcmp(argv[1], "faults") == 0) {
    // 256 MiB of the file (in the page cache after the warm-up), five times
    // each way; medians.
    uint64_t length = size < (256u << 20) ? size & ~(uint64_t)4095 : 256u << 20;
    if (length == 0) return 2;
    double pages = (double)(length / 4096);
    double mapped[5], copied[5], anonymous[5];
    for (int i = 0; i < 5; ++i) {
      mapped[i] = TouchMapping(fd, length) / pages * 1e9;
      copied[i] = PreadLoop(fd, length, 1 << 20) / pages * 1e9;
      anonymous[i] = TouchMapping(-1, length) / pages * 1e9;
    }
    qsort(mapped, 5, sizeof(double), Compare);
    qsort(copied, 5, sizeof(double), Compare);
    qsort(anonymous, 5, sizeof(double), Compare);
    printf("mapped_ns_per_page=%.0f pread_ns_per_page=%.0f anon_fault_ns=%.0f verdict=%s\n",
           mapped[2], copied[2], anonymous[2],
           mapped[2] > copied[2] ? "expensive" : "cheap");
    return 0;
  }
  fprintf(stderr, "io_probe: unknown mode %s\n", argv[1]);
  return 2;
}
