"""A real-QEMU test run once per QEMU release the project tests against."""

# 7.2 is Debian's own; 10.0 and 11.1 come from tools/qemu-versions.
QEMU_VERSIONS = ("7.2", "10.0", "11.1")

def qemu_version_tests(name, data = [], with_corpus = False):
    """sh_test `name` (7.2) and `name`_10_0, `name`_11_1: NAME.sh runs NAME.py
    with --qemu=VERSION. With `with_corpus`, each gets its version's corpus.

    Real QEMU processes (and, for 10.0 and 11.1, their chroots, which share
    /tmp) run outside Bazel's sandbox.
    """
    for version in QEMU_VERSIONS:
        native.sh_test(
            name = name + ("" if version == "7.2" else "_" + version.replace(".", "_")),
            size = "medium",
            srcs = [name + ".sh"],
            args = ["--qemu=" + version],
            data = [
                name + ".py",
                "checks.py",
                "qemu_testing.py",
                "//tools:qemu-versions",
                "//tools/qmig",
            ] + data + (["//corpus:qemu-" + version] if with_corpus else []),
            tags = [
                "local",
                "requires-qemu",
            ],
        )
