// Emulator benchmark: page placement into the uffd arena against a raw
// UFFDIO_COPY loop over the same number of pages, and fault service latency
// of a loopback migration against the raw kernel fault round trip, all
// measured in the same run. Prints medians as markdown.
//
//   bazel run -c opt //tools/bench:emulator_bench -- [--pages=16384] [--rounds=7]
#include <linux/userfaultfd.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "emulator/arena.h"
#include "emulator/loopback.h"
#include "emulator/userfaultfd.h"

ABSL_FLAG(uint64_t, pages, 16384, "pages placed per round (4 KiB each)");
ABSL_FLAG(int, rounds, 7, "rounds; medians are reported");
ABSL_FLAG(int, faults, 2000, "faults per round in the latency baseline");

namespace qmig {
namespace {

constexpr uint64_t kPage = 4096;

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

double Percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[std::min(v.size() - 1, static_cast<size_t>(p * (v.size() - 1) + 0.5))];
}

// The baseline: a fresh registered mapping and one UFFDIO_COPY per page.
double RawCopySeconds(uint64_t pages, const std::vector<uint8_t>& source) {
  absl::StatusOr<Userfaultfd> uffd = OpenUserfaultfd();
  if (!uffd.ok()) return -1;
  uint8_t* base = static_cast<uint8_t*>(mmap(nullptr, pages * kPage, PROT_READ | PROT_WRITE,
                                             MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0));
  struct uffdio_register reg = {};
  reg.range = {reinterpret_cast<uint64_t>(base), pages * kPage};
  reg.mode = UFFDIO_REGISTER_MODE_MISSING;
  ioctl(uffd->fd.get(), UFFDIO_REGISTER, &reg);
  absl::Time start = absl::Now();
  for (uint64_t i = 0; i < pages; ++i) {
    struct uffdio_copy copy = {};
    copy.dst = reinterpret_cast<uint64_t>(base + i * kPage);
    copy.src = reinterpret_cast<uint64_t>(source.data() + (i % 64) * kPage);
    copy.len = kPage;
    ioctl(uffd->fd.get(), UFFDIO_COPY, &copy);
  }
  double seconds = absl::ToDoubleSeconds(absl::Now() - start);
  munmap(base, pages * kPage);
  return seconds;
}

// The same pages through GuestArena::PlacePage (state map, error handling).
double ArenaSeconds(uint64_t pages, const std::vector<uint8_t>& source) {
  absl::StatusOr<std::unique_ptr<GuestArena>> arena =
      GuestArena::Create({{"pc.ram", pages * kPage, kPage}}, pages * kPage);
  if (!arena.ok() || !(*arena)->RegisterUserfault().ok()) return -1;
  GuestArena::Block& block = *(*arena)->Find("pc.ram");
  absl::Time start = absl::Now();
  for (uint64_t i = 0; i < pages; ++i) {
    (*arena)->PlacePage(block, i * kPage, absl::MakeConstSpan(source.data() + (i % 64) * kPage, kPage))
        .IgnoreError();
  }
  return absl::ToDoubleSeconds(absl::Now() - start);
}

// The kernel's round trip: a thread touches a missing page, a handler reads
// the fault and places the page at once; microseconds from touch to return.
std::vector<double> RawFaultLatencies(int faults) {
  std::vector<double> latencies;
  absl::StatusOr<Userfaultfd> uffd = OpenUserfaultfd();
  if (!uffd.ok()) return latencies;
  uint64_t pages = static_cast<uint64_t>(faults);
  uint8_t* base = static_cast<uint8_t*>(mmap(nullptr, pages * kPage, PROT_READ | PROT_WRITE,
                                             MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0));
  struct uffdio_register reg = {};
  reg.range = {reinterpret_cast<uint64_t>(base), pages * kPage};
  reg.mode = UFFDIO_REGISTER_MODE_MISSING;
  ioctl(uffd->fd.get(), UFFDIO_REGISTER, &reg);
  std::vector<uint8_t> page(kPage, 0x5a);
  std::atomic<bool> done{false};
  std::thread handler([&] {
    while (!done.load()) {
      struct pollfd pfd = {uffd->fd.get(), POLLIN, 0};
      if (poll(&pfd, 1, 10) <= 0) continue;
      struct uffd_msg msg;
      if (read(uffd->fd.get(), &msg, sizeof(msg)) != sizeof(msg)) continue;
      struct uffdio_copy copy = {};
      copy.dst = msg.arg.pagefault.address & ~(kPage - 1);
      copy.src = reinterpret_cast<uint64_t>(page.data());
      copy.len = kPage;
      ioctl(uffd->fd.get(), UFFDIO_COPY, &copy);
    }
  });
  for (uint64_t i = 0; i < pages; ++i) {
    absl::Time start = absl::Now();
    volatile uint8_t value = base[i * kPage];
    (void)value;
    latencies.push_back(absl::ToDoubleMicroseconds(absl::Now() - start));
  }
  done.store(true);
  handler.join();
  munmap(base, pages * kPage);
  return latencies;
}

std::string Machine() {
  std::ifstream cpuinfo("/proc/cpuinfo");
  std::string line, model = "unknown CPU";
  while (std::getline(cpuinfo, line)) {
    if (line.rfind("model name", 0) == 0) {
      model = line.substr(line.find(':') + 2);
      break;
    }
  }
  struct utsname name;
  uname(&name);
  return absl::StrFormat("%d CPUs (%s), kernel %s", std::thread::hardware_concurrency(), model,
                         name.release);
}

int Main() {
  const uint64_t pages = absl::GetFlag(FLAGS_pages);
  const int rounds = absl::GetFlag(FLAGS_rounds);
  std::vector<uint8_t> source(64 * kPage);
  for (size_t i = 0; i < source.size(); ++i) source[i] = static_cast<uint8_t>(i * 7 + 1);

  std::vector<double> raw, arena, raw_latency, loop_latency;
  std::vector<double> loop_p99, raw_p99;
  for (int round = 0; round < rounds; ++round) {
    // Alternate the order so that neither side always runs first.
    if (round % 2 == 0) {
      raw.push_back(RawCopySeconds(pages, source));
      arena.push_back(ArenaSeconds(pages, source));
    } else {
      arena.push_back(ArenaSeconds(pages, source));
      raw.push_back(RawCopySeconds(pages, source));
    }
    std::vector<double> kernel = RawFaultLatencies(absl::GetFlag(FLAGS_faults));
    raw_latency.push_back(Percentile(kernel, 0.5));
    raw_p99.push_back(Percentile(kernel, 0.99));

    GuestImage image = GuestImage::Synthetic(16 << 20, round + 1);
    LoopbackOptions options;
    options.source.dirty_pages_per_round = 512;
    options.source.background_page_delay = absl::Microseconds(100);
    options.destination.guest = *ParseGuestPattern("random,threads=2,touches=4000,block=pc.ram");
    absl::StatusOr<LoopbackResult> result = RunLoopback(image, options);
    if (!result.ok() || !result->report.valid()) {
      std::fprintf(stderr, "loopback migration failed\n");
      return 1;
    }
    loop_latency.push_back(Percentile(result->report.stats.fault_latency_us, 0.5));
    loop_p99.push_back(Percentile(result->report.stats.fault_latency_us, 0.99));
  }
  double raw_rate = pages / Median(raw), arena_rate = pages / Median(arena);
  std::printf("## Emulator benchmark (%s, %d rounds, medians)\n\n", absl::FormatTime(absl::Now()).c_str(),
              rounds);
  std::printf("Machine: %s\n\n", Machine().c_str());
  std::printf("| measure | baseline (same run) | qmig | ratio |\n|---|---:|---:|---:|\n");
  std::printf("| page placement, pages/s (%lu pages) | raw UFFDIO_COPY loop: %.0f | GuestArena::PlacePage: %.0f | %.2f |\n",
              static_cast<unsigned long>(pages), raw_rate, arena_rate, arena_rate / raw_rate);
  std::printf("| fault service p50, us | kernel round trip: %.1f | loopback request to placement: %.1f | %.1f |\n",
              Median(raw_latency), Median(loop_latency), Median(loop_latency) / Median(raw_latency));
  std::printf("| fault service p99, us | kernel round trip: %.1f | loopback request to placement: %.1f | %.1f |\n",
              Median(raw_p99), Median(loop_p99), Median(loop_p99) / Median(raw_p99));
  std::printf("\nTarget: placement >= 0.80 of the raw loop: %s\n",
              arena_rate / raw_rate >= 0.8 ? "met" : "NOT met");
  return 0;
}

}  // namespace
}  // namespace qmig

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  return qmig::Main();
}
