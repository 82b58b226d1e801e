"""Shared set-up of the tests that drive a real QEMU: where things are inside
or outside Bazel, the check that QEMU is installed, and QEMU's verdict on a
stream file (through tools/corpus/make_corpus.py --verdict)."""
import json
import os
import shutil
import subprocess
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
_RUNFILES = os.environ.get("TEST_SRCDIR", "")
ROOT = (os.path.join(_RUNFILES, os.environ.get("TEST_WORKSPACE", "qmig")) if _RUNFILES
        else os.path.dirname(_HERE))
CORPUS = os.path.join(ROOT, "corpus", "qemu-7.2")
QMIG = os.environ.get("QMIG") or os.path.join(ROOT, "tools", "qmig", "qmig")
MAKE_CORPUS = os.path.join(ROOT, "tools", "corpus", "make_corpus.py")


def require_qemu():
    """Fails loudly (returns False) when QEMU is missing."""
    if shutil.which("qemu-system-x86_64") is None:
        print("FAIL: qemu-system-x86_64 is not installed; run tools/setup", file=sys.stderr)
        return False
    return True


def qemu_verdict(path, meta, timeout=30):
    """What a real QEMU 7.2 destination configured as `meta` says of `path`."""
    out = subprocess.run([sys.executable, MAKE_CORPUS, "--verdict", path, "--meta", meta,
                          "--timeout", str(timeout)],
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
