"""qmig_fuzz_target: one fuzz target, built three ways.

For qmig_fuzz_target(name = "stream_fuzzer", srcs = ["stream_fuzzer.cc"], ...):
  :stream_fuzzer                  under --config=fuzz (--define=qmig_fuzz=libfuzzer)
                                  a libFuzzer binary; in any other build the
                                  replay runner, so that `bazel run` takes
                                  input files either way.
  :stream_fuzzer_replay           always the replay runner (fuzz/replay_main.cc).
  :stream_fuzzer_regression_test  replays fuzz/corpus/stream_fuzzer/ and
                                  corpus/regressions/stream_fuzzer/ under
                                  `bazel test` (g++ by default; with
                                  --config=fuzz, under ASan + UBSan).
The seed corpus and dictionary follow the names: fuzz/corpus/<name>/ and
fuzz/<name>.dict (tools/fuzz and .clusterfuzzlite/build.sh rely on them).
"""

load("@rules_cc//cc:defs.bzl", "cc_binary", "cc_library", "cc_test")

def qmig_fuzz_target(name, srcs, deps = [], data = []):
    """Declares the fuzzer, its replay runner and its regression test.

    Args:
      name: the fuzzer's name, ending in "_fuzzer".
      srcs: sources defining LLVMFuzzerTestOneInput (and optionally
        LLVMFuzzerInitialize); engine-neutral, no main().
      deps: libraries the sources use.
      data: runtime files the target needs, if any.
    """
    lib = name + "_lib"
    cc_library(
        name = lib,
        srcs = srcs,
        deps = deps,
        # The engine's main() (libFuzzer or replay_main) is what refers to
        # LLVMFuzzerTestOneInput; keep the object even though nothing in the
        # link refers to it before the engine does.
        alwayslink = True,
    )
    cc_binary(
        name = name,
        deps = [lib] + select({
            "//fuzz:libfuzzer": [],
            "//conditions:default": ["//fuzz:replay_main"],
        }),
        linkopts = select({
            "//fuzz:libfuzzer": ["-fsanitize=fuzzer"],
            "//conditions:default": [],
        }),
        data = data,
    )
    cc_binary(
        name = name + "_replay",
        deps = [lib, "//fuzz:replay_main"],
        data = data,
    )
    seeds = name + "_seeds"
    native.filegroup(
        name = seeds,
        srcs = native.glob(["corpus/" + name + "/**"]),
    )
    cc_test(
        name = name + "_regression_test",
        size = "small",
        deps = [lib, "//fuzz:replay_main"],
        data = data + [":" + seeds] + ["//corpus/regressions:" + name],
        # Directories, relative to the test's working directory (the
        # workspace root in runfiles); the regressions directory exists only
        # once it holds a file.
        args = [
            native.package_name() + "/corpus/" + name,
            "--optional=corpus/regressions/" + name,
        ],
    )
