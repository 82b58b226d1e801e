#!/usr/bin/env python3
"""Every finding code in parser/wire/finding.h is asserted by some test: its
FindingCode::kName in a C++ test, or its dotted name in a Python test or a
QEMU regression record. A code no test can reach is listed below with why;
a listed code that a test does assert must leave the list."""
import glob
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
RUNFILES = os.environ.get("TEST_SRCDIR", "")
ROOT = (os.path.join(RUNFILES, os.environ.get("TEST_WORKSPACE", "qmig")) if RUNFILES
        else os.path.dirname(HERE))

# Codes no test asserts, and why.
UNTESTED = {
    "emu.source_failed": "the synthetic source fails on its own only when its socket breaks "
                         "while the destination reads cleanly, which nothing outside the "
                         "source can cause",
}


def main():
    header = open(os.path.join(ROOT, "parser", "wire", "finding.h")).read()
    codes = re.findall(r'X\((k\w+),\s*"([a-z_.]+)"', header)
    if len(codes) < 50:
        print("FAIL: read only %d codes from finding.h" % len(codes))
        return 1
    sources = []
    for pattern in ("*/*_test.cc", "*/*/*_test.cc", "tests/*.py", "tests/*.cc",
                    "corpus/regressions/qemu/*.json"):
        sources += glob.glob(os.path.join(ROOT, pattern))
    sources = [path for path in sources if os.path.basename(path) != "finding_codes_test.py"]
    texts = [open(path, errors="replace").read() for path in sources]
    print("%d codes, %d test sources" % (len(codes), len(sources)))
    failures = 0
    for symbol, name in codes:
        asserted = any(re.search(r"\b%s\b" % symbol, text) or '"%s"' % name in text or
                       "'%s'" % name in text for text in texts)
        if asserted and name in UNTESTED:
            print("FAIL %s is asserted now: take it out of UNTESTED" % name)
            failures += 1
        elif not asserted and name not in UNTESTED:
            print("FAIL %s (%s) is asserted by no test" % (name, symbol))
            failures += 1
        elif not asserted:
            print("untested %s: %s" % (name, UNTESTED[name]))
    for name in set(UNTESTED) - {name for _, name in codes}:
        print("FAIL %s is listed as untested but is not a code" % name)
        failures += 1
    print("%d failed checks" % failures)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
