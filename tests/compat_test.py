#!/usr/bin/env python3
"""qmig compat on real pairs of QEMU versions.

With the -dump-vmstate outputs of tests/data/vmstate/ (QEMU 7.2, 10.0 and
11.1, made by make_vmstate_data.py) and real streams:

* a 7.2 stream (corpus/qemu-7.2/pc-i440fx-7.2.mig) into 10.0 and 11.1: loads;
* an 11.1 stream of machine pc-i440fx-11.1 into 7.2: does not, the machine;
* an 11.1 stream of machine pc-i440fx-7.2 into 7.2: loads (QEMU 7.2 loaded
  it when the corpus was made: its meta's cross_verdicts), and so do those
  of 8.2, 9.2 and 10.0;
* an 11.1 stream whose i8259 sends "i8259/ltim" into 7.2: does not, naming
  that subsection; into 10.0 and 11.1 it loads;
* the source's dump against the destination's gives the same answer for
  every device the stream carries, except where the stream shows that a
  subsection the destination lacks was not sent;
* hostile names come out escaped; usage errors exit 2.

With --live (qemu_compat_test), the same pairs against the real QEMUs:
`qmig compat --qemu=VERSION` asks each destination for its -dump-vmstate,
and `qmig qemu-verdict --qemu=VERSION` loads each stream into it (8.2's and
9.2's streams into 10.0 and 11.1 too, and 8.2's into 7.2); compat's
verdict must be QEMU's.
"""
import gzip
import json
import os
import shutil
import subprocess
import sys
import tempfile

from checks import check, finish  # noqa: E402
from qemu_testing import QMIG, ROOT  # noqa: E402

DATA = os.path.join(ROOT, "tests", "data", "vmstate")
STREAM_72 = os.path.join(ROOT, "corpus", "qemu-7.2", "pc-i440fx-7.2.mig")
STREAM_111 = os.path.join(ROOT, "corpus", "qemu-11.1", "pc-i440fx-11.1.mig")
STREAM_111_OLD_MACHINE = os.path.join(ROOT, "corpus", "qemu-11.1", "pc-i440fx-7.2.mig")
STREAM_LTIM = os.path.join(DATA, "qemu-11.1-pc-i440fx-7.2-ltim.mig")
STREAM_82 = os.path.join(ROOT, "corpus", "qemu-8.2", "pc-i440fx-8.2.mig")
STREAM_92 = os.path.join(ROOT, "corpus", "qemu-9.2", "pc-i440fx-9.2.mig")




def compat(*args):
    """qmig compat --json ARGS: (exit status, report or None)."""
    out = subprocess.run([QMIG, "compat", "--json", *args], capture_output=True, text=True,
                         timeout=120)
    try:
        return out.returncode, json.loads(out.stdout)
    except ValueError:
        print(out.stderr)
        return out.returncode, None


def devices(report, status=None):
    return [d for d in report["devices"] if status is None or d["status"] == status]


def by_name(report):
    return {(d["name"], d["instance_id"]): d for d in report["devices"]}


def dumps(tmp):
    """The dumps, unpacked: {"7.2": path, "10.0": path, "11.1": path,
    "11.1-new": path (machine pc-i440fx-11.1)}."""
    out = {}
    for key, name in (("7.2", "qemu-7.2-pc-i440fx-7.2"), ("10.0", "qemu-10.0-pc-i440fx-7.2"),
                      ("11.1", "qemu-11.1-pc-i440fx-7.2"),
                      ("11.1-new", "qemu-11.1-pc-i440fx-11.1")):
        path = os.path.join(tmp, name + ".json")
        with gzip.open(os.path.join(DATA, name + ".json.gz"), "rb") as f, open(path, "wb") as o:
            o.write(f.read())
        out[key] = path
    return out


def expect_loads(label, code, report):
    check(code == 0 and report is not None and report["will_load"] is True and
          report["verdict"] == "WILL LOAD", "%s: WILL LOAD, exit 0 (exit %d)" % (label, code))
    if report is None:
        return
    check(report["machine"]["status"] == "loads", "%s: the machine loads" % label)
    bad = [(d["name"], d["status"]) for d in devices(report)
           if d["status"] in ("does_not_load", "cannot_tell")]
    check(not bad, "%s: no device fails or is in doubt %s" % (label, bad))


def test_stream_into_newer(d):
    for version in ("10.0", "11.1"):
        code, report = compat(STREAM_72, d[version])
        label = "7.2 stream into %s" % version
        expect_loads(label, code, report)
        if report is None:
            continue
        names = by_name(report)
        # Checked against the destination's own vmsds, fields and subsections.
        for name in ("0000:00:01.1/ide", "0000:00:01.3/piix4_pm", "fw_cfg", "hpet", "i8259"):
            check(names.get((name, 0), {}).get("status") == "loads",
                  "%s: '%s' is checked and loads" % (label, name))
        check(names[("0000:00:01.3/piix4_pm", 0)]["destination_types"] == ["PIIX4_PM"],
              "%s: piix4_pm compared with the destination's PIIX4_PM" % label)
        # Outside -dump-vmstate: listed, not judged.
        for name in ("ram", "cpu", "timer", "apic", "globalstate"):
            check(names.get((name, 0), {}).get("status") == "not_checked",
                  "%s: '%s' is not checked" % (label, name))
        check(report["source"]["described"] and report["source"]["errors"] == 0,
              "%s: the stream's description is used" % label)


def test_newer_stream_into_72(d):
    code, report = compat(STREAM_111, d["7.2"])
    label = "11.1 stream (pc-i440fx-11.1) into 7.2"
    check(code == 1 and report is not None and report["will_load"] is False and
          report["verdict"] == "WILL NOT LOAD", "%s: WILL NOT LOAD, exit 1 (%d)" % (label, code))
    if report is not None:
        reasons = report["machine"]["reasons"]
        check(report["machine"]["status"] == "does_not_load" and reasons and
              reasons[0]["code"] == "machine.differs" and
              "'pc-i440fx-11.1'" in reasons[0]["message"] and
              "'pc-i440fx-7.2'" in reasons[0]["message"],
              "%s: because of the machine, named: %s" % (label, reasons))

    # The old machine type made by 11.1: QEMU 7.2 loaded it (the corpus says).
    meta = json.load(open(STREAM_111_OLD_MACHINE[:-len(".mig")] + ".meta.json"))
    check(meta["cross_verdicts"]["7.2"]["status"] == "completed",
          "QEMU 7.2 loaded corpus/qemu-11.1/pc-i440fx-7.2.mig (its meta)")
    code, report = compat(STREAM_111_OLD_MACHINE, d["7.2"])
    expect_loads("11.1 stream (pc-i440fx-7.2) into 7.2", code, report)

    # The same old machine type made by 8.2, 9.2 and 10.0: each loaded into
    # QEMU 7.2 when its corpus was made, and compat says it will.
    for version in ("8.2", "9.2", "10.0"):
        stream = os.path.join(ROOT, "corpus", "qemu-" + version, "pc-i440fx-7.2.mig")
        meta = json.load(open(stream[:-len(".mig")] + ".meta.json"))
        check(meta["cross_verdicts"]["7.2"]["status"] == "completed",
              "QEMU 7.2 loaded corpus/qemu-%s/pc-i440fx-7.2.mig (its meta)" % version)
        code, report = compat(stream, d["7.2"])
        expect_loads("%s stream (pc-i440fx-7.2) into 7.2" % version, code, report)

    code, report = compat(STREAM_LTIM, d["7.2"])
    label = "11.1 stream with i8259/ltim into 7.2"
    check(code == 1 and report is not None and report["verdict"] == "WILL NOT LOAD",
          "%s: WILL NOT LOAD (%d)" % (label, code))
    if report is not None:
        failing = devices(report, "does_not_load")
        check([(x["name"], x["reasons"][0]["code"]) for x in failing] ==
              [("i8259", "subsection.unknown")] and
              "'i8259/ltim'" in failing[0]["reasons"][0]["message"],
              "%s: i8259 fails on its subsection i8259/ltim: %s" %
              (label, [x["reasons"] for x in failing]))
        check(report["machine"]["status"] == "loads" and report["counts"]["does_not_load"] == 1,
              "%s: only that device" % label)
    for version in ("10.0", "11.1"):
        code, report = compat(STREAM_LTIM, d[version])
        expect_loads("11.1 stream with i8259/ltim into %s" % version, code, report)


def same_answers(label, stream_report, dump_report):
    """Every device of the stream that the source dump lists: the dump's
    verdict for a type with that vmsd is the stream's, or the dump is in
    doubt only over subsections the stream shows were not sent."""
    by_vmsd = {}
    for d in dump_report["devices"]:
        by_vmsd.setdefault(d["vmsd_name"], []).append(d)
    compared = 0
    for device in stream_report["devices"]:
        if device["status"] == "not_checked" or device["vmsd_name"] not in by_vmsd:
            continue
        compared += 1
        types = by_vmsd[device["vmsd_name"]]
        statuses = {t["status"] for t in types}
        resolved = (device["status"] in ("loads", "does_not_load") and "cannot_tell" in statuses and
                    all(r["code"].startswith("subsection.") for t in types
                        if t["status"] == "cannot_tell" for r in t["reasons"]))
        check(device["status"] in statuses or resolved,
              "%s: '%s' %s, the dumps say %s" % (label, device["name"], device["status"],
                                                 sorted(statuses)))
    check(compared >= 15, "%s: %d devices compared both ways" % (label, compared))


def test_dump_against_dump(d):
    for version in ("10.0", "11.1"):
        _, stream_report = compat(STREAM_72, d[version])
        code, dump_report = compat(d["7.2"], d[version])
        label = "7.2 dump against %s dump" % version
        check(dump_report is not None and dump_report["source"]["kind"] == "dump" and
              dump_report["machine"]["status"] == "loads", "%s: reads both dumps" % label)
        if stream_report and dump_report:
            same_answers(label, stream_report, dump_report)
            # Device types the destination dropped: fail only with a guest that has one.
            gone = {x["name"] for x in devices(dump_report, "does_not_load")}
            check("qxl" in gone and code == 1, "%s: a guest with a qxl would not load (%s)" %
                  (label, sorted(gone)))

    code, report = compat(d["11.1-new"], d["7.2"])
    label = "11.1 dump (pc-i440fx-11.1) against the 7.2 dump"
    check(code == 1 and report is not None and report["machine"]["status"] == "does_not_load",
          "%s: WILL NOT LOAD, the machine" % label)
    if report is not None:
        _, stream_report = compat(STREAM_111, d["7.2"])
        if stream_report:
            same_answers(label, stream_report, report)
        i8259 = [x for x in report["devices"] if x["name"] == "isa-i8259"]
        check(i8259 and i8259[0]["status"] == "cannot_tell" and
              "'i8259/ltim'" in i8259[0]["reasons"][0]["message"],
              "%s: isa-i8259 fails only if i8259/ltim is sent" % label)
        _, ltim = compat(STREAM_LTIM, d["7.2"])
        _, plain = compat(STREAM_111_OLD_MACHINE, d["7.2"])
        if ltim and plain:
            check(by_name(ltim)[("i8259", 0)]["status"] == "does_not_load" and
                  by_name(plain)[("i8259", 0)]["status"] == "loads",
                  "the streams decide: i8259/ltim sent fails, not sent loads")


def test_text_and_errors(d, tmp):
    out = subprocess.run([QMIG, "compat", STREAM_LTIM, d["7.2"]], capture_output=True,
                         text=True, timeout=120)
    lines = out.stdout.splitlines()
    check(out.returncode == 1 and lines and lines[-1] == "WILL NOT LOAD: 1 device",
          "text: verdict line last (%r)" % (lines[-1:],))
    check(any(line.startswith("does not load  'i8259' #0 v1: subsection 'i8259/ltim'")
              for line in lines), "text: one line for the device that fails")
    out = subprocess.run([QMIG, "compat", STREAM_72, d["11.1"]], capture_output=True,
                         text=True, timeout=120)
    check(out.returncode == 0 and out.stdout.splitlines()[-1] == "WILL LOAD",
          "text: WILL LOAD, exit 0")
    for args, what in (([STREAM_72], "no destination"),
                       ([STREAM_72, d["7.2"], "--qemu=7.2"], "a DEST and --qemu"),
                       ([STREAM_72, STREAM_72], "a stream as DEST"),
                       ([STREAM_72, d["7.2"], "--machine=pc"], "--machine without --qemu"),
                       ([os.path.join(tmp, "missing.json"), d["7.2"]], "a missing SOURCE")):
        out = subprocess.run([QMIG, "compat", *args], capture_output=True, text=True, timeout=60)
        check(out.returncode == 2 and out.stderr.startswith("qmig compat: "),
              "usage: %s exits 2 with a message" % what)


def test_hostile_names(tmp):
    evil = "dev\u00ff\u001b[31m\u0007"
    dump = {"vmschkmachine": {"Name": "m\u001b"},
            evil: {"Name": evil, "version_id": 2, "minimum_version_id": 1,
                   "Description": {"name": evil, "version_id": 2, "minimum_version_id": 1,
                                   "Subsections": [{"name": evil + "/s", "version_id": 1,
                                                    "minimum_version_id": 1}]}}}
    source = dict(dump)
    source[evil] = json.loads(json.dumps(dump[evil]))
    source[evil]["Description"]["Subsections"][0]["name"] = evil + "/other\u001b"
    source[evil]["version_id"] = source[evil]["Description"]["version_id"] = 3
    src, dst = os.path.join(tmp, "evil-src.json"), os.path.join(tmp, "evil-dst.json")
    json.dump(source, open(src, "w"))
    json.dump(dump, open(dst, "w"))
    code, report = compat(src, dst)
    text = json.dumps(report)
    check(code == 1 and report is not None and "\\\\x1b" in text and "\\u001b" not in text,
          "hostile names: JSON with the bytes escaped (%d)" % code)
    out = subprocess.run([QMIG, "compat", src, dst], capture_output=True, timeout=60)
    check(out.returncode == 1 and all(b == 0x0a or 0x20 <= b < 0x7f for b in out.stdout),
          "hostile names: no control or non-ASCII byte reaches the terminal")


# ---------------------------------------------------------------------------
# Against the real QEMUs (--live).

def real_outcome(version, stream, tmp):
    """"loads" or "does not load ...", from loading `stream` into QEMU
    `version` with qmig qemu-verdict (a QEMU that refuses the machine does
    not load), with QEMU's last words."""
    local = os.path.join(tmp, os.path.basename(stream))   # chrooted QEMUs see /tmp only
    shutil.copyfile(stream, local)
    out = subprocess.run([QMIG, "qemu-verdict", "--json", "--qemu=" + version, local],
                         capture_output=True, text=True, timeout=300)
    if out.returncode == 2:
        return ("does not load" if "unsupported machine type" in out.stderr
                else "error: " + out.stderr.strip()[-300:])
    qemu = json.loads(out.stdout)["qemu"]
    if qemu["status"] == "completed":
        return "loads"
    return "does not load (%s: %s)" % (qemu["status"], qemu["message"])


def test_live(tmp):
    pairs = [(STREAM_72, "10.0", 0), (STREAM_72, "11.1", 0), (STREAM_111, "7.2", 1),
             (STREAM_111_OLD_MACHINE, "7.2", 0), (STREAM_LTIM, "7.2", 1),
             (STREAM_LTIM, "10.0", 0), (STREAM_LTIM, "11.1", 0),
             # Streams of upstream's 8.2 and 9.2 on their own machine types.
             (STREAM_82, "10.0", 0), (STREAM_82, "11.1", 0), (STREAM_82, "7.2", 1),
             (STREAM_92, "10.0", 0), (STREAM_92, "11.1", 0)]
    for stream, version, expected in pairs:
        label = "%s into QEMU %s" % (os.path.relpath(stream, ROOT), version)
        code, report = compat(stream, "--qemu=" + version)
        check(code == expected and report is not None,
              "%s: qmig compat --qemu exits %d (%d)" % (label, expected, code))
        real = real_outcome(version, stream, tmp)
        said = {0: "loads", 1: "does not load"}.get(code, "cannot tell")
        check(real.startswith(said), "%s: compat says %s, QEMU %s" % (label, said, real))
        if stream == STREAM_LTIM and version == "7.2":
            check("'i8259'" in real, "%s: QEMU fails on the i8259's state" % label)
    code, report = compat(STREAM_111, "--qemu=7.2")
    if report is not None:
        reasons = report["machine"]["reasons"]
        check(report["destination"]["machine_missing"] and reasons and
              reasons[0]["code"] == "machine.missing",
              "QEMU 7.2 has no machine pc-i440fx-11.1: %s" % reasons)
    code, report = compat(STREAM_72, "--qemu=11.1", "--machine=pc-q35-7.2")
    check(code == 1 and report is not None and
          report["machine"]["reasons"][0]["code"] == "machine.differs",
          "--machine=pc-q35-7.2 for an i440fx stream: the machine differs")


def main():
    live = "--live" in sys.argv[1:]
    with tempfile.TemporaryDirectory(prefix="qmig-compat-test-", dir="/tmp") as tmp:
        if live:
            test_live(tmp)
        else:
            d = dumps(tmp)
            test_stream_into_newer(d)
            test_newer_stream_into_72(d)
            test_dump_against_dump(d)
            test_text_and_errors(d, tmp)
            test_hostile_names(tmp)
    return finish()


if __name__ == "__main__":
    sys.exit(main())
