"""Shared set-up of the tests that drive a real QEMU: where things are inside
or outside Bazel, which QEMU version a run uses, the check that it is
installed, and its verdict on a stream file (through
tools/corpus/make_corpus.py --verdict).

A test runs against one QEMU version: `--qemu=7.2|10.0|11.1` on its command
line (Bazel passes it through `args`), else $QMIG_TEST_QEMU, else 7.2. 7.2 is
the system QEMU; 10.0 and 11.1 are the chroots of tools/qemu-versions, which
tools/setup creates. With $QMIG_TEST_QEMU_BINARY the run uses that
qemu-system-x86_64 instead, as the version it names with --qemu (which may
then also be 8.2 or 9.2, whose corpora were made by builds of upstream's
source that the project's scripts cannot install)."""
import importlib.util
import json
import os
import shutil
import subprocess
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
_RUNFILES = os.environ.get("TEST_SRCDIR", "")
ROOT = (os.path.join(_RUNFILES, os.environ.get("TEST_WORKSPACE", "qmig")) if _RUNFILES
        else os.path.dirname(_HERE))
# Under Bazel the binary is in the runfiles; run by hand, the one bazel built.
QMIG = os.environ.get("QMIG") or (os.path.join(ROOT, "tools", "qmig", "qmig") if _RUNFILES else
                                  os.path.join(ROOT, "bazel-bin", "tools", "qmig", "qmig"))
MAKE_CORPUS = os.path.join(ROOT, "tools", "corpus", "make_corpus.py")
QEMU_VERSIONS_TOOL = os.path.join(ROOT, "tools", "qemu-versions")
KNOWN_VERSIONS = ("7.2", "10.0", "11.1")
# Versions with a corpus, but whose QEMU only $QMIG_TEST_QEMU_BINARY provides.
BUILT_VERSIONS = ("8.2", "9.2")

def _given_binary():
    """$QMIG_TEST_QEMU_BINARY as an absolute path (a bare name is looked up
    on PATH), or None."""
    given = os.environ.get("QMIG_TEST_QEMU_BINARY")
    if not given:
        return None
    return os.path.abspath(shutil.which(given) or given)


QEMU_BINARY = _given_binary()


def _version_from_argv():
    for i, arg in enumerate(sys.argv[1:], 1):
        if arg.startswith("--qemu="):
            return arg.split("=", 1)[1]
        if arg == "--qemu" and i + 1 < len(sys.argv):
            return sys.argv[i + 1]
    return None


QEMU_VERSION = _version_from_argv() or os.environ.get("QMIG_TEST_QEMU") or "7.2"
if QEMU_VERSION not in KNOWN_VERSIONS + (BUILT_VERSIONS if QEMU_BINARY else ()):
    raise SystemExit("unknown QEMU version %r (known: %s; %s with $QMIG_TEST_QEMU_BINARY)"
                     % (QEMU_VERSION, ", ".join(KNOWN_VERSIONS), ", ".join(BUILT_VERSIONS)))
# What --qemu of qmig and of make_corpus.py take for this run's QEMU.
QEMU_SELECTOR = QEMU_BINARY or QEMU_VERSION


def tool_module(relative_path):
    """A module of the project's Python tools (tools/corpus/make_corpus.py,
    fuzz/qemu_stream.py), loaded from its file under ROOT: the one place a
    test reaches into another directory."""
    path = os.path.join(ROOT, relative_path)
    name = os.path.splitext(os.path.basename(path))[0]
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def corpus_dir(version=None):
    """The bundled corpus a QEMU version made."""
    return os.path.join(ROOT, "corpus", "qemu-" + (version or QEMU_VERSION))


CORPUS = corpus_dir()


def require_qemu(version=None):
    """Fails loudly (returns False) when this run's QEMU is missing."""
    version = version or QEMU_VERSION
    if QEMU_BINARY and version == QEMU_VERSION:
        if not (os.path.isfile(QEMU_BINARY) and os.access(QEMU_BINARY, os.X_OK)):
            print("FAIL: $QMIG_TEST_QEMU_BINARY %s is not an executable file" % QEMU_BINARY,
                  file=sys.stderr)
            return False
        out = subprocess.run([QEMU_BINARY, "--version"], capture_output=True, text=True,
                             timeout=60)
        if "version %s." % version not in out.stdout:
            print("FAIL: $QMIG_TEST_QEMU_BINARY is not QEMU %s: %s"
                  % (version, (out.stdout.splitlines() or ["no version"])[0]), file=sys.stderr)
            return False
        return True
    if version == "7.2":
        if shutil.which("qemu-system-x86_64") is None:
            print("FAIL: qemu-system-x86_64 is not installed; run tools/setup", file=sys.stderr)
            return False
        return True
    out = subprocess.run([QEMU_VERSIONS_TOOL, "path", version], capture_output=True, text=True)
    if out.returncode != 0:
        print("FAIL: QEMU %s is not installed (%s); run tools/setup"
              % (version, out.stderr.strip()), file=sys.stderr)
        return False
    return True


def qemu_command(version=None):
    """argv prefix that runs this run's qemu-system-x86_64."""
    version = version or QEMU_VERSION
    if QEMU_BINARY and version == QEMU_VERSION:
        return [QEMU_BINARY]
    if version == "7.2":
        return ["qemu-system-x86_64"]
    out = subprocess.run([QEMU_VERSIONS_TOOL, "binary", version], capture_output=True, text=True,
                         check=True)
    return [out.stdout.strip()]


def qemu_verdict(path, meta, timeout=30, version=None):
    """What a real QEMU destination of this run's version, configured as
    `meta`, says of `path`."""
    selector = QEMU_SELECTOR if version in (None, QEMU_VERSION) else version
    out = subprocess.run([sys.executable, MAKE_CORPUS, "--qemu", selector,
                          "--verdict", path, "--meta", meta, "--timeout", str(timeout)],
                         capture_output=True, text=True, timeout=timeout + 90)
    try:
        return json.loads(out.stdout)
    except json.JSONDecodeError:
        raise AssertionError("verdict tool exited %d: %s" % (out.returncode, out.stderr[-2000:]))


def qmig_check(path, *flags):
    """qmig check --json on `path`, as a dict; exit status 0/1 must agree."""
    out = subprocess.run([QMIG, "check", "--json", *flags, path], capture_output=True, text=True,
                         timeout=120)
    if out.returncode not in (0, 1):
        raise AssertionError("qmig exited %d: %s" % (out.returncode, out.stderr))
    report = json.loads(out.stdout)
    assert report["valid"] == (out.returncode == 0)
    return report
