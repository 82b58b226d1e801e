"""Shared set-up of the tests that drive a real QEMU: where things are inside
or outside Bazel, which QEMU version a run uses, the check that it is
installed, and its verdict on a stream file (through
tools/corpus/make_corpus.py --verdict).

A test runs against one QEMU version: `--qemu=7.2|10.0|11.1` on its command
line (Bazel passes it through `args`), else $QMIG_TEST_QEMU, else 7.2. 7.2 is
the system QEMU; 10.0 and 11.1 are the chroots of tools/qemu-versions, which
tools/setup creates."""
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
QMIG = os.environ.get("QMIG") or os.path.join(ROOT, "tools", "qmig", "qmig")
MAKE_CORPUS = os.path.join(ROOT, "tools", "corpus", "make_corpus.py")
QEMU_VERSIONS_TOOL = os.path.join(ROOT, "tools", "qemu-versions")
KNOWN_VERSIONS = ("7.2", "10.0", "11.1")


def _version_from_argv():
    for i, arg in enumerate(sys.argv[1:], 1):
        if arg.startswith("--qemu="):
            return arg.split("=", 1)[1]
        if arg == "--qemu" and i + 1 < len(sys.argv):
            return sys.argv[i + 1]
    return None


QEMU_VERSION = _version_from_argv() or os.environ.get("QMIG_TEST_QEMU") or "7.2"
if QEMU_VERSION not in KNOWN_VERSIONS:
    raise SystemExit("unknown QEMU version %r (known: %s)" % (QEMU_VERSION,
                                                             ", ".join(KNOWN_VERSIONS)))


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
    if version == "7.2":
        return ["qemu-system-x86_64"]
    out = subprocess.run([QEMU_VERSIONS_TOOL, "binary", version], capture_output=True, text=True,
                         check=True)
    return [out.stdout.strip()]


def qemu_verdict(path, meta, timeout=30, version=None):
    """What a real QEMU destination of this run's version, configured as
    `meta`, says of `path`."""
    out = subprocess.run([sys.executable, MAKE_CORPUS, "--qemu", version or QEMU_VERSION,
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
