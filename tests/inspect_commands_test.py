#!/usr/bin/env python3
"""qmig's inspection commands on the real corpus, as a user runs them.

* `dump --format=analyze-migration` and `desc` equal, byte for byte, what
  QEMU 7.2's scripts/analyze-migration.py printed (tests/golden/), on a file
  and on a pipe; on the streams the script fails on, the same shape.
* `extract` writes RAM that equals the pages the qtest guest wrote (SHA-256
  from each stream's metadata), also from a pipe.
* `diff` of two real migrations of one guest names exactly the pages that
  were changed between them, and nothing else.
* every command gives the same answer on a pipe as on a file; `dump --json`
  records tile the stream; a cut stream still gives well-formed output.
"""
import glob
import hashlib
import json
import os
import subprocess
import sys
import tempfile

from checks import check, finish  # noqa: E402
from qemu_testing import CORPUS, QMIG, ROOT  # noqa: E402

GOLDEN = os.path.join(ROOT, "tests", "golden", "analyze-migration")
PAGE = 4096



def qmig(*args, stdin_path=None, expect=(0,)):
    stdin = open(stdin_path, "rb") if stdin_path else subprocess.DEVNULL
    try:
        run = subprocess.run([QMIG, *args], stdin=stdin, capture_output=True, timeout=300)
    finally:
        if stdin_path:
            stdin.close()
    if run.returncode not in expect:
        raise AssertionError("qmig %s exited %d: %s" % (" ".join(args), run.returncode,
                                                         run.stderr.decode()[-2000:]))
    return run


def streams():
    return sorted(glob.glob(os.path.join(CORPUS, "*.mig")))


def name_of(path):
    return os.path.basename(path)[:-len(".mig")]


def test_goldens():
    goldens = sorted(glob.glob(os.path.join(GOLDEN, "*.state.json")))
    check(len(goldens) >= 7, "at least 7 analyze-migration state goldens (%d)" % len(goldens))
    for golden in goldens:
        name = os.path.basename(golden)[:-len(".state.json")]
        stream = os.path.join(CORPUS, name + ".mig")
        want = open(golden, "rb").read()
        got = qmig("dump", "--format=analyze-migration", stream).stdout
        check(got == want, "%s: dump --format=analyze-migration equals the script's output" % name)
        piped = qmig("dump", "--format=analyze-migration", "-", stdin_path=stream).stdout
        check(piped == want, "%s: ... and from a pipe" % name)
    for golden in sorted(glob.glob(os.path.join(GOLDEN, "*.desc.json"))):
        name = os.path.basename(golden)[:-len(".desc.json")]
        stream = os.path.join(CORPUS, name + ".mig")
        got = qmig("desc", stream).stdout
        check(got == open(golden, "rb").read(), "%s: desc equals the script's -d desc" % name)
    # Where the script fails, qmig keeps the shape: one object per section.
    failed = json.load(open(os.path.join(GOLDEN, "failures.json")))
    shape = json.loads(open(goldens[0], "rb").read())
    for name in sorted(failed):
        stream = os.path.join(CORPUS, name + ".mig")
        if not os.path.exists(stream) or "state" not in failed[name]:
            continue
        state = json.loads(qmig("dump", "--format=analyze-migration", stream,
                                expect=(0, 1)).stdout)
        if name.endswith(".resume"):
            check(state == {}, "%s: a headerless recovery stream opens no section" % name)
            continue
        ram = [k for k in state if k.startswith("ram (")]
        check(len(ram) == 1 and "section sizes" in state[ram[0]],
              "%s (the script fails: %s): qmig gives the RAM section sizes" %
              (name, failed[name]["state"]))
        common = set(shape) & set(state)
        check(len(common) >= 20, "%s: %d device sections keyed as the script keys them"
              % (name, len(common)))


# Where guest-physical addresses live: pc.ram from 0; the pc-dimms of
# multi-block.mig at 4 GiB (see its .meta.json).
DIMMS = {"multi-block": [(0x100200000, "mem2"), (0x100000000, "mem1")]}


def block_of(name, addr):
    for base, block in DIMMS.get(name, []):
        if addr >= base:
            return block, addr - base
    return "pc.ram", addr


def page_sha(path, offset):
    with open(path, "rb") as f:
        f.seek(offset)
        data = f.read(PAGE)
    return hashlib.sha256(data.ljust(PAGE, b"\0")).hexdigest()


def test_extract_round_trip(tmp):
    tested = 0
    for stream in streams():
        meta_path = stream[:-len(".mig")] + ".meta.json"
        if not os.path.exists(meta_path):
            continue
        meta = json.load(open(meta_path))
        pages = [p for p in meta.get("expected_pages") or [] if p.get("in_stream")]
        name = name_of(stream)
        # Multifd pages travel on the channels; a recovered postcopy's on two
        # connections; with x-ignore-shared, guest RAM is not sent at all.
        whole = meta.get("kind") == "precopy" or name == "postcopy"
        if not pages or not whole or "x-ignore-shared" in meta.get("capabilities", []):
            continue
        for mode in ("file", "pipe"):
            out = os.path.join(tmp, "extract-%s-%s" % (name, mode))
            if mode == "file":
                run = qmig("extract", stream, out, expect=(0, 1))
            else:
                run = qmig("extract", "-", out, stdin_path=stream, expect=(0, 1))
            index = json.load(open(os.path.join(out, "extract.json")))
            ram = {b["name"]: os.path.join(out, b["file"]) for b in index["ram_blocks"]}
            wrong = []
            for p in pages:
                block, offset = block_of(name, int(p["addr"], 16))
                if page_sha(ram[block], offset) != p["sha256"]:
                    wrong.append(p["addr"])
            check(not wrong and run.returncode == 0,
                  "%s (%s): extracted RAM holds the %d pages the guest wrote%s"
                  % (name, mode, len(pages), " (wrong: %s)" % wrong[:5] if wrong else ""))
            if mode == "file":
                sparse = os.stat(ram["pc.ram"]).st_blocks * 512 < os.path.getsize(ram["pc.ram"]) // 2
                check(sparse, "%s: pc.ram.ram is sparse" % name)
        tested += 1
    check(tested >= 8, "extract checked on %d streams with known guest writes" % tested)


def test_diff():
    a = os.path.join(CORPUS, "pc-i440fx-7.2.mig")
    b = os.path.join(CORPUS, "pc-i440fx-7.2-changed.mig")
    run = qmig("diff", "--json", a, b, expect=(1,))
    report = json.loads(run.stdout)
    pages = set()
    for block in report["ram"]:
        for start, end in block["ranges"]:
            pages.update((block["block"], addr) for addr in range(start, end, PAGE))
    want = {("pc.ram", 0x100000), ("pc.ram", 0x700000), ("pc.ram", 0x701000)}
    check(pages == want, "diff names exactly the changed pages: %s" %
          sorted((n, hex(p)) for n, p in pages))
    check(report["fields_differ"] == 0 and not report["equal"],
          "device state of the two migrations is equal, RAM is not")
    check(qmig("diff", a, a).returncode == 0, "a stream diffs equal to itself (exit 0)")
    piped = qmig("diff", "--json", "-", b, stdin_path=a, expect=(1,))
    check(json.loads(piped.stdout)["ram"] == report["ram"], "diff reads A from a pipe")
    text = qmig("diff", a, b, expect=(1,)).stdout.decode()
    check("3 pages differ" in text and text.strip().endswith("different"),
          "diff's text names the count and ends with the verdict")
    # postcopy.mig has no description: its devices are not decoded, which is
    # not the same as absent.
    post = os.path.join(CORPUS, "postcopy.mig")
    report = json.loads(qmig("diff", "--json", post, a, expect=(1,)).stdout)
    fields_absent_in_a = [f for f in report["fields"] if f["a"] is None]
    check(report["devices_not_compared"] == 30 and not fields_absent_in_a and
          {"device": "timer#0", "not_decoded_in": "A"} in report["not_compared"],
          "diff lists the 30 undecoded devices of A as not compared, not their fields as absent")
    text = qmig("diff", post, post).stdout.decode()
    check(text.strip().endswith("equal in what was compared (30 devices not decoded; "
                                "pass --schema to compare them)"),
          "diff of undecoded streams says what it could not compare: %r" % text[-120:])
    text = qmig("diff", post, a, expect=(1,)).stdout.decode()
    check("(1 page)\n" in text and "(1 pages)" not in text, "diff's ranges count in the singular")


def test_pipe_equals_file(tmp):
    for stream in [os.path.join(CORPUS, n + ".mig")
                   for n in ("pc-q35-7.2", "postcopy", "xbzrle", "dirty-bitmaps")]:
        name = name_of(stream)
        for args in (["dump"], ["dump", "--json"]):
            f = qmig(*args, stream, expect=(0, 1))
            p = qmig(*args, "-", stdin_path=stream, expect=(0, 1))
            fo, po = f.stdout, p.stdout
            if "--json" in args:
                fo, po = json.loads(fo), json.loads(po)
                fo.pop("input"), po.pop("input")
            check(fo == po and f.returncode == p.returncode,
                  "%s: %s gives the same on a pipe as on a file" % (name, " ".join(args)))
        reports = []
        for source in (stream, "-"):
            out = os.path.join(tmp, "report-%s.html" % len(reports))
            qmig("report", source, "-o", out, stdin_path=stream if source == "-" else None,
                 expect=(0, 1))
            html = open(out, encoding="utf-8").read()
            start = html.index('id="qmig-data"')
            start = html.index(">", start) + 1
            data = json.loads(html[start:html.index("</script>", start)])
            data.pop("input")
            reports.append(data)
        check(reports[0] == reports[1], "%s: report's data is the same from a pipe" % name)
        check(qmig("desc", "-", stdin_path=stream, expect=(0, 1)).stdout ==
              qmig("desc", stream, expect=(0, 1)).stdout, "%s: desc from a pipe" % name)


def test_dump_json_records(tmp):
    stream = os.path.join(CORPUS, "postcopy.mig")
    dump = json.loads(qmig("dump", "--json", stream).stdout)
    records = dump["records"]
    end = 0
    tiled = True
    for record in records:
        tiled = tiled and record["offset"] == end
        end = record["offset"] + record["size"]
        if record["kind"] == "package":
            inner = record["offset"] + 9
            for child in record["contents"]:
                tiled = tiled and child["offset"] == inner and child["depth"] == 1
                inner = child["offset"] + child["size"]
            tiled = tiled and inner <= end
    check(tiled and end == os.path.getsize(stream),
          "dump --json records tile postcopy.mig from 0 to its end (%d records)" % len(records))
    kinds = {r["kind"] for r in records}
    check({"header", "configuration", "command", "package", "ram", "eof"} <= kinds,
          "dump --json has every kind of record: %s" % sorted(kinds))
    check(dump["valid"] and dump["ram_blocks"][0]["name"] == "pc.ram",
          "dump --json ends with the verdict and the RAM summary")

    cut = os.path.join(tmp, "cut.mig")
    with open(os.path.join(CORPUS, "pc-i440fx-7.2.mig"), "rb") as f:
        data = f.read()
    with open(cut, "wb") as f:
        f.write(data[:200000])
    run = qmig("dump", "--json", cut, expect=(1,))
    broken = json.loads(run.stdout)
    check(not broken["valid"] and broken["findings"][0]["code"] == "stream.truncated",
          "a cut stream: dump --json still well-formed, with the truncation finding")
    check(broken["records"][-1]["complete"] is False,
          "the record the stream was cut in is marked incomplete")
    check(run.stderr == b"", "no progress output when stderr is not a terminal")


def stderr_on_a_terminal(*args):
    """Runs qmig with stderr on a pseudo-terminal; what it wrote there."""
    import pty
    master, slave = pty.openpty()
    try:
        run = subprocess.run([QMIG, *args], stdout=subprocess.DEVNULL, stderr=slave,
                             timeout=120)
        os.close(slave)
        slave = None
        chunks = []
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the terminal's other end is closed
                break
            if not chunk:
                break
            chunks.append(chunk)
        return run.returncode, b"".join(chunks)
    finally:
        os.close(master)
        if slave is not None:
            os.close(slave)


def test_progress(tmp):
    stream = os.path.join(CORPUS, "pc-i440fx-7.2.mig")  # over 4000 page records
    for command in (["check"], ["dump"], ["extract", os.path.join(tmp, "progress")]):
        rc, err = stderr_on_a_terminal(command[0], stream, *command[1:])
        check(rc == 0 and b"qmig " + command[0].encode() + b": " in err and
              err.endswith(b"\r\x1b[K"),
              "%s on a terminal shows progress on stderr and erases it: %r"
              % (command[0], err[-60:]))
    rc, err = stderr_on_a_terminal("dump", "--quiet", stream)
    check(rc == 0 and err == b"", "--quiet silences the progress")


def test_grouped_warnings():
    # postcopy.mig: 30 device sections, unverified, one warning each.
    stream = os.path.join(CORPUS, "postcopy.mig")
    text = qmig("check", stream).stdout.decode()
    warnings = [line for line in text.splitlines() if line.startswith("warning ")]
    check(len(warnings) == 1 and warnings[0].startswith(
        "warning 30 x device.unverified, first @0x15b0c "),
          "check groups 30 repeated warnings of one code into one line: %r" % warnings[:2])
    check("device.unverified 30" in text and "VALID: 0 errors, 30 warnings" in text,
          "the counts and the verdict still count each warning")
    verbose = qmig("check", "--verbose", stream).stdout.decode()
    listed = [line for line in verbose.splitlines() if line.startswith("warning device.unverified @")]
    check(len(listed) == 30, "--verbose lists each of the 30 warnings (%d)" % len(listed))
    report = json.loads(qmig("check", "--json", stream).stdout)
    check(len(report["findings"]) == 30, "--json lists each of the 30 warnings")
    dumped = qmig("dump", "--verbose", stream).returncode
    check(dumped == 0, "dump takes --verbose")
    usage = qmig("extract", "--verbose", stream, "/nonexistent", expect=(2,))
    check(b"--verbose" in usage.stderr, "extract, which prints no warnings, refuses --verbose")


def main():
    with tempfile.TemporaryDirectory() as tmp:
        test_grouped_warnings()
        test_goldens()
        test_extract_round_trip(tmp)
        test_diff()
        test_pipe_equals_file(tmp)
        test_dump_json_records(tmp)
        test_progress(tmp)
    return finish()


if __name__ == "__main__":
    sys.exit(main())
