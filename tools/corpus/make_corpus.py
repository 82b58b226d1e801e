#!/usr/bin/env python3
"""Regenerate qmig's corpus of real QEMU migration streams.

Every stream in corpus/qemu-VERSION/ is produced by that QEMU's
qemu-system-x86_64 driven over QMP (and qtest, for deterministic guest
memory).  For each stream a NAME.meta.json describes how it was made and what
a real QEMU destination of the same version says when it loads it (the
"qemu_verdict").  7.2 is Debian 12's system QEMU; 10.0 and 11.1 run from the
chroots of tools/qemu-versions.

Standard library only.  Usage:

  tools/corpus/make_corpus.py [--qemu=7.2|10.0|11.1|PATH [--qemu-label TEXT]]
        [--out DIR] [--only NAME ...] [--list]
  tools/corpus/make_corpus.py [--qemu=...] --verdict FILE --machine M
        [--caps a,b] [--param k=v ...] [--meta NAME.meta.json]
        [--timeout N] [-- extra qemu args]

See tools/corpus/README.md.
"""

import argparse
import json
import os
import re
import shutil
import signal
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from corpusgen import qemu as _qemu  # noqa: E402
# The names below are also used by tests and tools that import make_corpus.
from corpusgen.guest import (MemModel, apply_write, check_pages, hexify_writes,  # noqa: E402,F401
                             model_of, page_pattern, std_writes, w_memset, w_pattern, w_write,
                             w_writeq)
from corpusgen.proxy import Conn, Proxy  # noqa: E402,F401
from corpusgen.qemu import (BASE_ARGS, PAGE, TINY_BIOS, TINY_BIOS_ARGS, TMP_TOKEN,  # noqa: E402,F401
                            VM_TIMEOUT, Vm, aux_of, dest_listen, free_port, log, machine_args,
                            make_aux_files, set_caps, set_params, wait_status)
from corpusgen.qmp import QMP, QMPError, QMPTimeout, QTest  # noqa: E402,F401
from corpusgen.recipes import MADE_BY, Ctx  # noqa: E402,F401
from corpusgen.scan import Scan, scan_multifd_channel, scan_rp  # noqa: E402,F401
from corpusgen.specs import specs_for  # noqa: E402
from corpusgen.verdict import verdict, verdict_for_meta  # noqa: E402,F401

REPO_ROOT = _qemu.REPO_ROOT


def qemu_version():
    return _qemu.qemu_version()


def default_out():
    return os.path.join(REPO_ROOT, "corpus", "qemu-" + _qemu.QEMU_KEY)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--qemu", default="7.2", metavar="7.2|10.0|11.1|PATH",
                    help="the QEMU that makes and loads the streams (default 7.2, the "
                    "system's; 10.0 and 11.1 come from tools/qemu-versions)")
    ap.add_argument("--qemu-label", metavar="TEXT",
                    help="with --qemu=PATH: what the metas say of that QEMU instead of its "
                    "path (e.g. 'upstream v8.2.2 built from source')")
    ap.add_argument("--out", help="output directory (default corpus/qemu-VERSION)")
    ap.add_argument("--only", nargs="+", metavar="NAME")
    ap.add_argument("--list", action="store_true")
    ap.add_argument("--verdict", metavar="FILE", help="load FILE into a destination and "
                    "print the verdict JSON")
    ap.add_argument("--machine", default=None,
                    help="machine type for --verdict (default pc-i440fx-7.2)")
    ap.add_argument("--caps", default="", help="comma-separated capabilities (--verdict)")
    ap.add_argument("--param", action="append", default=[], metavar="K=V",
                    help="migration parameter for the destination (--verdict)")
    ap.add_argument("--meta", help="take machine, config args, capabilities and parameters "
                    "(and, for multi-channel streams, how to load them) from this "
                    "NAME.meta.json (--verdict)")
    ap.add_argument("--timeout", type=float, default=30.0)
    ap.add_argument("extra", nargs="*", help="extra QEMU args (after --) for --verdict")
    a = ap.parse_args()
    if a.qemu_label and a.qemu in _qemu.KNOWN_VERSIONS:
        ap.error("--qemu-label names a QEMU given by path; --qemu=%s is known by version" % a.qemu)
    _qemu.use_qemu(a.qemu, a.qemu_label)
    if a.verdict:
        params = {}
        for kv in a.param:
            k, v = kv.split("=", 1)
            params[k] = int(v) if re.fullmatch(r"-?\d+", v) else \
                {"true": True, "false": False}.get(v, v)
        caps = [c for c in a.caps.split(",") if c]
        meta = json.load(open(a.meta)) if a.meta else None
        v = verdict_for_meta(a.verdict, meta, os.path.dirname(os.path.abspath(a.meta))
                             if a.meta else None, machine=a.machine, extra=list(a.extra),
                             caps=caps, params=params, timeout=a.timeout)
        print(json.dumps(v, indent=2))
        return 0
    all_specs = specs_for(_qemu.QEMU_KEY)
    if a.list:
        for s in all_specs:
            print(s["name"])
        return 0
    names = [s["name"] for s in all_specs]
    if a.only:
        bad = [n for n in a.only if n not in names]
        if bad:
            ap.error("unknown stream(s) %s; known: %s" % (bad, names))
    todo = [s for s in all_specs if not a.only or s["name"] in a.only]
    out = a.out or default_out()
    os.makedirs(out, exist_ok=True)
    version = qemu_version()
    log("QEMU: %s; output: %s" % (version, out))
    failures, made = [], []
    for s in todo:
        tmp = tempfile.mkdtemp(prefix="qmig-corpus-", dir="/tmp")
        ctx = Ctx(out, tmp, version)
        t0 = time.time()
        try:
            files = s["make"](ctx, s)
            made += files
            log("%s: done in %.1fs: %s" % (s["name"], time.time() - t0, ", ".join(files)))
        except Exception as e:
            failures.append((s["name"], str(e)))
            log("%s: FAILED: %s" % (s["name"], e))
        finally:
            _qemu._kill_all()
            shutil.rmtree(tmp, ignore_errors=True)
    for fn in made:
        log("  %-32s %8d bytes" % (fn, os.path.getsize(os.path.join(out, fn))))
    if failures:
        for n, e in failures:
            log("FAILED %s: %s" % (n, e))
        return 1
    return 0


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(1))
    sys.exit(main())
