#!/usr/bin/env python3
"""`qmig report` pages, rendered by headless Chromium and checked against
the JSON embedded in them.

For a few corpus streams (postcopy with its return path, q35, xbzrle, and a
truncated i440fx stream) the test writes the report, lets Chromium run the
page's script and dump the resulting DOM, and compares what the page shows
(map boxes, finding rows and markers, RAM and device rows, timeline points)
with the data. A synthetic report at the page's size limits (20000 records,
50000 timeline pages) must render too, and broken data must produce an error
message rather than a blank page. A screenshot of the postcopy report must
show the map's colours; it is kept for people to look at.

    report_html_test.py --qmig QMIG --corpus DIR --chromium CHROMIUM
    report_html_test.py --fake-report SAMPLE.json --chromium CHROMIUM

--fake-report builds each page from the template and SAMPLE.json instead of
running qmig, for working on the page alone; checks tied to a particular
stream are then left out. Without Chromium the test fails: it never skips.
"""
import argparse
import copy
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from html.parser import HTMLParser

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_TEMPLATE = os.path.join(os.path.dirname(HERE), "tools", "qmig", "report_template.html")
TEMPLATE_MARKER = "/*QMIG_REPORT_DATA*/"
DATA_SCRIPT = re.compile(r'(<script id="qmig-data" type="application/json">)(.*?)(</script>)', re.S)
SCREEN = (1280, 2400)
# Widths at which a RAM block's every range must show: a phone and a laptop.
NARROW, WIDE = (480, 2400), (1280, 2400)
# A stream of this size, with more records than the page keeps.
LARGE_STREAM_BYTES = 50 << 20
# kMaxReportRecords in tools/qmig/report_page.h.
RECORDS_KEPT = 20000
# Zoomed onto it, a 9-byte command must be at least this wide to be read.
MIN_ZOOMED_COMMAND_PX = 16
TRUNCATE_AT = 200000
# Pixels a kind's colour must cover in the screenshot: several times a
# legend swatch (12 x 12), so the legend alone cannot pass.
MIN_COLOUR_PIXELS = 600
# Generous: only catches rendering that grows badly with the data.
MAX_RENDER_MS = 20000
# kMaxReportDeviceValues, kMaxReportValues, kMaxReportValueText,
# kMaxReportValueChars and kMaxReportPathChars in tools/qmig/report_page.h.
MAX_DEVICE_VALUES = 2000
MAX_VALUES = 20000
MAX_VALUE_TEXT = 4 << 20
MAX_VALUE_CHARS = 800
MAX_PATH_CHARS = 256


# ------------------------------------------------------------------ results

class Results:
    def __init__(self):
        self.failed = 0
        self.passed = 0

    def check(self, case, what, ok, detail=""):
        print("%s  %-12s %s%s" % ("PASS" if ok else "FAIL", case, what,
                                  (": " + detail) if detail else ""), flush=True)
        if ok:
            self.passed += 1
        else:
            self.failed += 1
        return ok

    def equal(self, case, what, got, want):
        return self.check(case, what, got == want,
                          "%s" % _short(got) if got == want else "got %s, want %s" % (
                              _short(got), _short(want)))


def _short(value, limit=160):
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


# ------------------------------------------------------------------ reports

def embedded_data(html):
    """The JSON object a report page carries."""
    match = DATA_SCRIPT.search(html)
    if not match:
        raise AssertionError("no qmig-data script element in the page")
    # qmig writes every `<` as `\u003c`, a JSON escape, so the text parses as is.
    return json.loads(match.group(2))


def with_data(html, data_text):
    """`html` with `data_text` as its embedded data, escaped as qmig does:
    any text, so that broken data can be tried too."""
    escaped = data_text.replace("<", "\\u003c")
    return DATA_SCRIPT.sub(lambda m: m.group(1) + escaped + m.group(3), html, count=1)


def fill_template(template_path, data):
    template = open(template_path, encoding="utf-8").read()
    if template.count(TEMPLATE_MARKER) != 1:
        raise AssertionError("the template must hold the data marker exactly once")
    return template.replace(TEMPLATE_MARKER, json.dumps(data).replace("<", "\\u003c"))


def qmig_report(qmig, stream, return_path, out):
    cmd = [qmig, "report", stream, "-o", out]
    if return_path:
        cmd.insert(3, "--return_path=" + return_path)
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    # Like `check`, 1 means the stream is invalid; the report is written anyway.
    if run.returncode not in (0, 1) or not os.path.exists(out):
        raise AssertionError("%s exited %d: %s" % (" ".join(cmd), run.returncode, run.stderr[-2000:]))
    return open(out, encoding="utf-8").read(), run.returncode


def enlarge(data):
    """`data` grown to the page's documented limits: 20000 records with
    packages, 1000 findings (some repeated at one offset), 20000 device
    values, 50000 timeline pages, 4096 ranges per block."""
    d = copy.deepcopy(data)
    span = 1 << 30
    n_records = 20000
    step = span // n_records
    records = []
    offset = 0
    while len(records) < n_records:
        if len(records) % 100 == 0 and n_records - len(records) >= 5:
            records.append({"offset": offset, "size": 5 * step, "kind": "package",
                            "label": "PACKAGED", "depth": 0})
            for k in range(4):
                records.append({"offset": offset + 8 + k * step, "size": step - 16, "kind": "device",
                                "label": "FULL 'dev' #%d" % k, "depth": 1})
            offset += 5 * step
        else:
            kind = ("ram", "ram", "ram", "command", "iterable")[len(records) % 5]
            records.append({"offset": offset, "size": step if kind == "ram" else 9, "kind": kind,
                            "label": kind, "depth": 0})
            offset += step
    d.update(bytes=span, records=records, records_dropped=12345)
    # 20000 values in all (the page's cap), some cut.
    d["devices"] = [{"name": "dev%d" % i, "instance": i % 3, "version": 1, "offset": r["offset"],
                     "size": r["size"], "fields": 100 if i % 2 == 0 else 0, "decoded": i % 2 == 0,
                     "values": [["f%d.a[%d]" % (i, k), "0x%08x" % k] if k % 10 else
                                ["f%d.b" % i, "00 " * 266 + "00", 1200] for k in range(100)]
                     if i % 2 == 0 else [], "values_dropped": 0}
                    for i, r in enumerate(r for r in records if r["kind"] == "device")][:400]
    # Every fifth finding repeats the one before it at the same offset.
    d["findings"] = [{"code": "sample.code", "severity": ("error", "warning", "note")[(i - i % 5 // 4) % 3],
                      "offset": (i - i % 5 // 4) * (span // 1000), "path": "PART 'ram' #0",
                      "message": "finding %d" % i, "qemu_accepts": i % 2 == 0} for i in range(1000)]
    blocks = [("pc.ram", 1 << 30), ("pc.bios", 1 << 18), ("vga.vram", 16 << 20)]
    d["ram_blocks"] = [{"name": name, "length": length, "page_size": 4096,
                        "pages": {"zero": 100, "normal": 200, "xbzrle": 3, "compressed": 4},
                        "ranges": [[i * (length // 4096), (i + 1) * (length // 4096),
                                    ("zero", "normal", "xbzrle")[i % 3]] for i in range(4096)],
                        "ranges_dropped": 7}
                       for name, length in blocks]
    run = span // 2
    pages = [[run + i * (span // 2 // 50000), i % 3, (i * 7919 * 4096) % blocks[i % 3][1]]
             for i in range(50000)]
    requests = [{"index": i, "block": blocks[0][0], "offset": pages[i * 100][2], "length": 4096,
                 "rp_offset": 32 + 16 * i, "answered_at": None if i % 10 == 0 else pages[i * 100][0],
                 "asked_after": None if i % 10 == 0 else pages[i * 100 - 1][0],
                 "latency": None if i % 10 == 0 else pages[i * 100][0] - pages[i * 100 - 1][0]}
                for i in range(500)]
    d["timeline"] = {"listen_offset": run - 100, "run_offset": run, "blocks": [b for b, _ in blocks],
                     "pages": pages, "pages_dropped": 99, "requests": requests,
                     "pongs": [{"value": v, "ping_at": None if v == 7 else v * 64} for v in range(256)],
                     "pongs_dropped": 5, "shut_status": 1, "messages": {"PONG": 261, "REQ_PAGES": 500}}
    return d


def write_large_stream(path, sections=30000, ping_every=2000, pages=12800):
    """A stream of LARGE_STREAM_BYTES and more: 50 MiB of RAM pages, then a
    LISTEN out of place (two findings at one offset) and 30000 undescribed
    device sections (a warning each) with a PING every 2000, cut short. The
    page keeps 20000 records and the commands after them. Returns the
    LISTEN's offset and the PINGs' offsets."""
    def be16(v):
        return struct.pack(">H", v)

    def be32(v):
        return struct.pack(">I", v)

    def be64(v):
        return struct.pack(">Q", v)

    def command(number, payload=b""):
        return b"\x08" + be16(number) + be16(len(payload)) + payload

    def full(section_id):
        return (b"\x04" + be32(section_id) + b"\x01u" + be32(0) + be32(1) + b"\x01" +
                b"\x7e" + be32(section_id))

    machine, block, page = b"pc-i440fx-7.2", b"pc.ram", 4096
    pings = []
    with open(path, "wb") as out:
        out.write(b"QEVM" + be32(3) + b"\x07" + be32(len(machine)) + machine)
        out.write(command(1))  # OPEN_RETURN_PATH
        out.write(b"\x01" + be32(1) + b"\x03ram" + be32(0) + be32(4) + be64(pages * page | 0x04) +
                  bytes([len(block)]) + block + be64(pages * page) + be64(0x10) + b"\x7e" + be32(1))
        out.write(b"\x02" + be32(1))
        data = bytes(range(256)) * (page // 256)
        for p in range(pages):
            out.write(be64(p * page | 0x08 | (0x20 if p else 0)) +
                      (b"" if p else bytes([len(block)]) + block) + data)
        out.write(be64(0x10) + b"\x7e" + be32(1))
        listen = out.tell()
        out.write(command(4))  # POSTCOPY_LISTEN: outside a package, and before ADVISE
        for i in range(sections):
            if i and i % ping_every == 0:
                pings.append(out.tell())
                out.write(command(2, be32(i // ping_every)))
            out.write(full(100 + i))
        pings.append(out.tell())
        out.write(command(2, be32(99)))
        out.write(full(1 << 20)[:-3])  # cut inside the last footer
    return listen, pings


def write_described_stream(path, devices):
    """A precopy stream of FULL sections with their description in the
    trailer: `devices` is [(name, fields, body)]."""
    def be32(v):
        return struct.pack(">I", v)

    machine = b"pc-i440fx-7.2"
    description = json.dumps({"page_size": 4096, "devices": [
        {"name": name, "instance_id": 0, "vmsd_name": name, "version": 1, "fields": fields}
        for name, fields, _ in devices]}).encode()
    with open(path, "wb") as out:
        out.write(b"QEVM" + be32(3) + b"\x07" + be32(len(machine)) + machine)
        for section_id, (name, _, body) in enumerate(devices):
            out.write(b"\x04" + be32(section_id) + bytes([len(name)]) + name.encode() + be32(0) + be32(1) +
                      body + b"\x7e" + be32(section_id))
        out.write(b"\x00\x06" + be32(len(description)) + description)


def check_value_bounds(results, browser, qmig, work):
    """Devices' values as the page gets them: a long value cut with its
    length, a long path cut in the middle, at most MAX_DEVICE_VALUES listed
    per device, MAX_VALUES and MAX_VALUE_TEXT in all, the rest counted; the
    page shows them so."""
    case = "values"
    # "d": a 2000-byte buffer (5999 characters), a name of 300 characters and
    # 3000 array elements; then ten devices of 2000 values each, of which the
    # ninth reaches MAX_VALUES.
    stream = os.path.join(work, "values.mig")
    write_described_stream(stream, [
        ("d", [{"name": "buf", "type": "buffer", "size": 2000},
               {"name": "n" * 300, "type": "uint8", "size": 1},
               {"name": "arr", "array_len": 3000, "type": "uint8", "size": 1}],
         bytes(i & 0xff for i in range(2000)) + b"\x07" + bytes(3000))] +
        [("e%d" % k, [{"name": "a", "array_len": 2000, "type": "uint8", "size": 1}], bytes(2000))
         for k in range(10)])
    out = os.path.join(work, "values.html")
    html, exit_code = qmig_report(qmig, stream, None, out)
    data = embedded_data(html)
    results.equal(case, "valid", (exit_code, data["valid"]), (0, True))
    devices = data["devices"]
    values = devices[0]["values"] if devices else []
    results.check(case, "a long value cut, with its length",
                  len(values) > 0 and values[0][0] == "buf" and len(values[0][1]) == MAX_VALUE_CHARS and
                  values[0][2:] == [2000 * 3 - 1] and
                  values[0][1] == " ".join("%02x" % (i & 0xff) for i in range(2000))[:MAX_VALUE_CHARS],
                  "%s" % [values[0][0], len(values[0][1]), values[0][2:]] if values else "no values")
    path = values[1][0] if len(values) > 1 else ""
    results.check(case, "a long path cut in the middle",
                  path == "n" * (MAX_PATH_CHARS // 2) + "..." + "n" * (MAX_PATH_CHARS // 2),
                  "%d characters" % len(path))
    results.check(case, "values past the device's cap counted",
                  devices and devices[0]["fields"] == 3002 and len(values) == MAX_DEVICE_VALUES and
                  devices[0]["values_dropped"] == 3002 - MAX_DEVICE_VALUES)
    listed = [len(v["values"]) for v in devices]
    results.check(case, "values past the cap in all counted",
                  listed == [MAX_DEVICE_VALUES] * 10 + [0] and sum(listed) == MAX_VALUES and
                  all(len(v["values"]) + v["values_dropped"] == v["fields"] for v in devices),
                  "listed per device: %s" % listed)
    dom = parse_dom(browser.dom(out))
    check_page_safely(results, case, data, dom)
    dropped = dom.find(data_testid="device-values-dropped")
    results.check(case, "the page says what was left out",
                  dropped is not None and "1,002 more" in dropped.text(),
                  " ".join(dropped.text().split()) if dropped is not None else "no note")

    # Six devices of 1000 buffers of 300 bytes: 899 characters each, cut to
    # 800; MAX_VALUE_TEXT runs out in the sixth.
    case = "value-text"
    stream = os.path.join(work, "value-text.mig")
    write_described_stream(stream, [
        ("t%d" % k, [{"name": "b%d" % i, "type": "buffer", "size": 300} for i in range(1000)], bytes(300 * 1000))
        for k in range(6)])
    html, exit_code = qmig_report(qmig, stream, None, out)
    data = embedded_data(html)
    texts = [len(x[0]) + len(x[1]) for v in data["devices"] for x in v["values"]]
    listed = [len(v["values"]) for v in data["devices"]]
    results.check(case, "values past the text budget counted",
                  sum(texts) <= MAX_VALUE_TEXT < sum(texts) + len("b999") + MAX_VALUE_CHARS and
                  listed[:5] == [1000] * 5 and 0 < listed[5] < 1000 and
                  all(len(v["values"]) + v["values_dropped"] == v["fields"] for v in data["devices"]),
                  "%d characters in %s values" % (sum(texts), listed))


def check_large_stream(results, browser, qmig, work):
    """A 50 MiB stream with more records than the page keeps: its commands
    are kept and listed beside the map, its repeated findings share a row,
    and the map zooms onto any offset given in the address."""
    case = "50MiB"
    stream = os.path.join(work, "large-stream.mig")
    listen, pings = write_large_stream(stream)
    out = os.path.join(work, "large-stream.html")
    html, exit_code = qmig_report(qmig, stream, None, out)
    data = embedded_data(html)
    results.check(case, "stream size", os.path.getsize(stream) >= LARGE_STREAM_BYTES,
                  "%d bytes" % os.path.getsize(stream))
    results.equal(case, "exit status", exit_code, 1)
    commands = {r["offset"]: r for r in data["records"] if r["kind"] == "command"}
    results.check(case, "commands kept past the record cap",
                  data["records_dropped"] > 0 and all(p in commands for p in pings) and
                  len(data["records"]) > RECORDS_KEPT,
                  "%d records, %d dropped" % (len(data["records"]), data["records_dropped"]))
    listen_findings = [f for f in data["findings"] if f["offset"] == listen]
    results.check(case, "two findings at the LISTEN",
                  len(listen_findings) == 2 and len({f["code"] for f in listen_findings}) == 1,
                  "%s" % [f["code"] for f in listen_findings])
    dom = parse_dom(browser.dom(out))
    check_page_safely(results, case, data, dom)
    row = [r for r in dom.find_all(data_testid="finding-row") if int(r.attrs["data-offset"]) == listen]
    results.check(case, "the LISTEN's findings share a row",
                  len(row) == 1 and row[0].attrs["data-count"] == "2" and
                  len(row[0].find_all(data_testid="finding-member")) == 2)
    dropped = dom.find(data_testid="findings-dropped")
    # Errors are kept in place of warnings: the stream's one error, at its
    # end, is listed; the notice counts the warnings that were not kept.
    truncated = [f for f in data["findings"] if f["code"] == "stream.truncated"]
    results.check(case, "dropped findings counted, the error at the end kept and listed",
                  dropped is not None and len(truncated) == 1 and
                  str(data["findings_dropped"]) in dropped.text().replace(",", ""),
                  " ".join(dropped.text().split()) if dropped is not None else "no notice")

    def command_box(page_dom):
        return [b for b in page_dom.find_all(data_testid="map-record")
                if int(b.attrs["data-offset"]) == pings[-1]]

    whole = command_box(dom)
    results.check(case, "a command is a sliver on the whole map",
                  len(whole) == 1 and int(whole[0].attrs["width"]) <= 3,
                  "%s px" % (whole[0].attrs["width"] if whole else "no box"))
    zoomed = parse_dom(browser.dom(out, fragment="#offset=%#x" % pings[-1]))
    window = zoomed.find(data_testid="map-window")
    box = command_box(zoomed)
    inspector = zoomed.find(data_testid="map-inspector")
    results.check(case, "#offset= zooms the map onto the command",
                  window is not None and int(window.attrs["data-start"]) <= pings[-1] < int(window.attrs["data-end"]) and
                  len(box) == 1 and int(box[0].attrs["width"]) >= MIN_ZOOMED_COMMAND_PX and
                  "PING value=99" in inspector.text(),
                  "window %s-%s, box %s px" % (window.attrs.get("data-start") if window else "?",
                                               window.attrs.get("data-end") if window else "?",
                                               box[0].attrs["width"] if box else "none"))


# ------------------------------------------------------------------ Chromium

def chromium_command(chromium, profile, *extra):
    # The page renders synchronously while it loads, so the DOM dump and the
    # screenshot need no --virtual-time-budget. --force-color-profile keeps
    # the page's colours exact in the screenshot.
    return [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            "--no-first-run", "--no-default-browser-check", "--disable-extensions", "--mute-audio",
            "--hide-scrollbars", "--force-color-profile=srgb", "--force-device-scale-factor=1",
            "--user-data-dir=" + profile, *extra]


def chromium_env(home):
    env = dict(os.environ)
    # Chromium writes under HOME and XDG dirs, which may be read-only in a test.
    env.update(HOME=home, XDG_CONFIG_HOME=os.path.join(home, ".config"),
               XDG_CACHE_HOME=os.path.join(home, ".cache"))
    return env


class Browser:
    def __init__(self, chromium, work):
        self.chromium = chromium
        self.work = work
        self.runs = 0

    def _run(self, page, *extra, timeout=180, fragment=""):
        self.runs += 1
        profile = os.path.join(self.work, "profile-%d" % self.runs)
        cmd = chromium_command(self.chromium, profile, *extra) + ["file://" + os.path.abspath(page) + fragment]
        run = subprocess.run(cmd, capture_output=True, timeout=timeout, env=chromium_env(self.work))
        if run.returncode != 0:
            raise AssertionError("chromium exited %d: %s" % (
                run.returncode, run.stderr.decode(errors="replace")[-2000:]))
        return run

    def dom(self, page, size=None, fragment=""):
        extra = ["--window-size=%d,%d" % size] if size else []
        return self._run(page, "--dump-dom", *extra, fragment=fragment).stdout.decode("utf-8")

    def screenshot(self, page, png, size):
        self._run(page, "--window-size=%d,%d" % size, "--screenshot=" + png)
        if not os.path.exists(png):
            raise AssertionError("chromium wrote no screenshot")


# ------------------------------------------------------------------ DOM

class Node:
    __slots__ = ("tag", "attrs", "children")

    def __init__(self, tag, attrs):
        self.tag = tag
        self.attrs = attrs
        self.children = []

    def text(self):
        parts, stack = [], [self]
        while stack:
            node = stack.pop()
            if isinstance(node, str):
                parts.append(node)
            else:
                stack.extend(reversed(node.children))
        return "".join(parts)

    def find_all(self, **attrs):
        """Descendants whose attributes have these values (`_` for `-`)."""
        want = {k.replace("_", "-"): v for k, v in attrs.items()}
        found, stack = [], list(reversed(self.children))
        while stack:
            node = stack.pop()
            if isinstance(node, str):
                continue
            if all(node.attrs.get(k) == v for k, v in want.items()):
                found.append(node)
            stack.extend(reversed(node.children))
        return found

    def find(self, **attrs):
        found = self.find_all(**attrs)
        return found[0] if found else None


class DomBuilder(HTMLParser):
    VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
            "track", "wbr"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.root = Node("#document", {})
        self.stack = [self.root]

    def handle_starttag(self, tag, attrs):
        node = Node(tag, {k: (v if v is not None else "") for k, v in attrs})
        self.stack[-1].children.append(node)
        if tag not in self.VOID:
            self.stack.append(node)

    def handle_startendtag(self, tag, attrs):
        self.stack[-1].children.append(Node(tag, {k: (v if v is not None else "") for k, v in attrs}))

    def handle_endtag(self, tag):
        for depth in range(len(self.stack) - 1, 0, -1):
            if self.stack[depth].tag == tag:
                del self.stack[depth:]
                return

    def handle_data(self, data):
        self.stack[-1].children.append(data)


def parse_dom(html):
    builder = DomBuilder()
    builder.feed(html)
    builder.close()
    return builder.root


def body_of(dom):
    for node in dom.find_all():
        if node.tag == "body":
            return node
    raise AssertionError("the page has no body")


def number(text):
    return int(text.strip().replace(",", ""))


def finding_groups(findings):
    """Findings grouped as the page shows them: one row per code and
    severity at one offset, in the order of their first finding."""
    groups, index = [], {}
    for i, f in enumerate(findings):
        key = (f["offset"], f.get("severity"), f.get("code"))
        if key not in index:
            index[key] = len(groups)
            groups.append({"offset": f["offset"], "members": []})
        groups[index[key]]["members"].append(i)
    return groups


def html_of(dom):
    """The page's script, from the DOM (it holds the page's constants)."""
    return "".join(n.text() for n in dom.find_all() if n.tag == "script")


def page_constant(html, name):
    match = re.search(r"const %s = (\d+);" % name, html)
    if not match:
        raise AssertionError("no %s in the page" % name)
    return int(match.group(1))


def value_text(cell):
    """A value cell's own text, without the note on a cut value."""
    return "".join(c for c in cell.children if isinstance(c, str))


def table_rows(table):
    """The rows of a table's own body, not of tables nested in it."""
    return [row for body in table.children if not isinstance(body, str) and body.tag == "tbody"
            for row in body.children if not isinstance(row, str) and row.tag == "tr"]


def cell(row):
    return [c for c in row.children if not isinstance(c, str) and c.tag == "td"][0]


def summary_shows(node, value):
    """Whether a summary cell shows `value` whole: scalars as text, lists as
    items, objects as key/value rows, lists of objects as table rows."""
    text = " ".join(node.text().split())
    if value is None:
        return text == "none"
    if isinstance(value, bool):
        return text == ("yes" if value else "no")
    if isinstance(value, int):
        return text.replace(",", "") == str(value)
    if isinstance(value, str):
        return text == (value if value else "empty")
    if isinstance(value, dict):
        tables = [n for n in node.find_all() if n.tag == "table"]
        if not value:
            return text == "none"
        rows = table_rows(tables[0]) if tables else []
        return ([r.attrs.get("data-key") for r in rows] == list(value) and
                all(summary_shows(cell(r), value[r.attrs["data-key"]]) for r in rows))
    if isinstance(value, list):
        if not value:
            return text == "none"
        if all(not isinstance(x, (dict, list)) for x in value):
            items = [n for n in node.find_all() if n.tag == "li"]
            return len(items) == len(value) and all(summary_shows(i, x) for i, x in zip(items, value))
        tables = [n for n in node.find_all() if n.tag == "table"]
        return bool(tables) and len(table_rows(tables[0])) == len(value)
    return False


# ------------------------------------------------------------------ page checks

def check_page(results, case, data, dom):
    """What the rendered page shows must match its data."""
    def testid(name):
        return dom.find(data_testid=name)

    def field(row, name):
        return row.find(data_field=name).text().strip()

    if not results.equal(case, "rendered flag", body_of(dom).attrs.get("data-rendered"), "1"):
        error = testid("error")
        if error is not None:
            print("      page error: " + " ".join(error.text().split())[:500])
        return
    error = testid("error")
    results.check(case, "no error message", error is not None and "hidden" in error.attrs)

    results.equal(case, "file name", testid("file-name").text().strip(), data["input"])
    results.equal(case, "verdict", testid("verdict").text().strip(),
                  "VALID" if data["valid"] else "INVALID")
    results.equal(case, "error count", number(testid("error-count").text()), data["errors"])
    results.equal(case, "warning count", number(testid("warning-count").text()), data["warnings"])
    results.equal(case, "size", int(testid("file-size").attrs["data-bytes"]), data["bytes"])

    boxes = dom.find_all(data_testid="map-record")
    results.equal(case, "map records", len(boxes), len(data["records"]))
    results.check(case, "map records at their offsets",
                  [(int(b.attrs["data-offset"]), int(b.attrs["data-size"]), b.attrs["data-kind"])
                   for b in boxes] ==
                  [(r["offset"], r["size"], r["kind"]) for r in data["records"]])

    findings = data["findings"]
    groups = finding_groups(findings)
    rows = dom.find_all(data_testid="finding-row")
    results.equal(case, "finding rows, one per code at an offset", len(rows), len(groups))
    results.check(case, "finding rows show offsets in hex and decimal",
                  [(field(r, "offset-hex"), number(field(r, "offset-dec"))) for r in rows] ==
                  [(hex(g["offset"]), g["offset"]) for g in groups])
    results.equal(case, "finding rows count their findings",
                  [int(r.attrs["data-count"]) for r in rows], [len(g["members"]) for g in groups])
    # A repeated finding's row lists each of them, with its message.
    members = [r.find_all(data_testid="finding-member") for r in rows]
    results.check(case, "repeated findings listed in their row",
                  [len(m) for m in members] == [len(g["members"]) if len(g["members"]) > 1 else 0
                                                for g in groups] and
                  all(findings[i]["message"] in m.text() for ms, g in zip(members, groups)
                      for i, m in zip(g["members"], ms)),
                  "%d rows of repeats" % sum(1 for m in members if m))
    markers = dom.find_all(data_testid="finding-marker")
    results.equal(case, "finding markers on the map, one per row", len(markers), len(groups))
    results.check(case, "finding markers at their offsets",
                  sorted((int(m.attrs["data-offset"]), int(m.attrs["data-count"])) for m in markers) ==
                  sorted((g["offset"], len(g["members"])) for g in groups))

    # Beside the map: every command and package, and every row of findings.
    items = dom.find_all(data_testid="map-list-item")
    results.check(case, "commands and findings listed beside the map",
                  sorted((int(i.attrs["data-offset"]), i.attrs["data-kind"], int(i.attrs["data-count"]))
                         for i in items) ==
                  sorted([(r["offset"], r["kind"], 1) for r in data["records"]
                          if r["kind"] in ("command", "package")] +
                         [(g["offset"], "finding", len(g["members"])) for g in groups]),
                  "%d items" % len(items))

    devices = data["devices"]
    shown = devices[:page_constant(html_of(dom), "DEVICE_PAGE")]
    rows = dom.find_all(data_testid="device-row")
    results.equal(case, "device rows", len(rows), len(shown))
    results.check(case, "device rows match",
                  [(field(r, "name"), number(field(r, "instance")), number(field(r, "version")),
                    field(r, "offset"), number(field(r, "size"))) for r in rows] ==
                  [(v["name"], v["instance"], v["version"], hex(v["offset"]), v["size"])
                   for v in shown])
    results.check(case, "device rows expandable, collapsed",
                  all(r.tag == "details" and "open" not in r.attrs and
                      r.children and r.children[0].tag == "summary" for r in rows))
    results.check(case, "device rows hold their field values",
                  [[(v.find(data_field="path").text(), value_text(v.find(data_field="value")),
                     v.find(**{"class": "cut"}) is not None) for v in r.find_all(data_testid="device-value")]
                   for r in rows] ==
                  [[(x[0], x[1], len(x) > 2) for x in v["values"]] for v in shown],
                  "%d values" % sum(len(v["values"]) for v in shown))
    more = dom.find(data_testid="devices-more")
    results.check(case, "more devices behind a button",
                  (more is None) if not devices else
                  more is not None and (("hidden" in more.attrs) == (len(devices) == len(shown))))

    blocks = data["ram_blocks"]
    rows = dom.find_all(data_testid="ram-block-row")
    results.equal(case, "RAM block rows", [r.attrs.get("data-block") for r in rows],
                  [b["name"] for b in blocks])
    kinds = ("zero", "normal", "xbzrle", "compressed")
    results.check(case, "RAM page counts match",
                  [[number(r.find(data_kind=k).text()) for k in kinds] for r in rows] ==
                  [[b["pages"].get(k, 0) for k in kinds] for b in blocks])
    strips = dom.find_all(data_testid="ram-block-strip")
    results.equal(case, "RAM range strips",
                  [(s.attrs.get("data-block"), len(s.find_all(data_testid="ram-range")))
                   for s in strips],
                  [(b["name"], len(b["ranges"])) for b in blocks])

    table = dom.find(data_testid="summary")
    summary = data["summary"]
    if summary:
        rows = table_rows(table) if table is not None else []
        results.check(case, "summary is a table of every field, nothing cut",
                      table is not None and table.tag == "table" and
                      [r.attrs.get("data-key") for r in rows] == sorted(summary) and
                      all(summary_shows(cell(r), summary[r.attrs["data-key"]]) for r in rows),
                      "fields that differ: %s" % [r.attrs.get("data-key") for r in rows
                                                  if not summary_shows(cell(r), summary.get(r.attrs.get("data-key")))])

    timeline = data.get("timeline")
    pages = dom.find_all(data_testid="timeline-page")
    requests = dom.find_all(data_testid="timeline-request")
    if timeline is None:
        results.check(case, "no timeline without a return path", not pages and not requests)
        return
    results.equal(case, "timeline pages", len(pages), len(timeline["pages"]))
    results.equal(case, "timeline requests", len(requests), len(timeline["requests"]))
    results.equal(case, "requests never answered",
                  sum("never" in r.attrs.get("class", "").split() for r in requests),
                  sum(q["answered_at"] is None for q in timeline["requests"]))
    rows = dom.find_all(data_testid="request-row")
    results.check(case, "page requests listed with their answer and latency",
                  [(field(r, "block"), field(r, "page"), field(r, "rp-offset"), field(r, "answered-at"),
                    r.find(data_field="latency").attrs.get("data-value")) for r in rows] ==
                  [(q["block"], hex(q["offset"]),
                    hex(q["rp_offset"]) if q.get("rp_offset") is not None else "",
                    hex(q["answered_at"]) if q["answered_at"] is not None else "never answered",
                    str(q["latency"]) if q.get("latency") is not None else "")
                   for q in timeline["requests"]], "%d rows" % len(rows))
    pongs = dom.find_all(data_testid="pong")
    results.check(case, "PONGs listed with their PINGs",
                  [(int(p.attrs["data-value"]), p.attrs["data-ping"]) for p in pongs] ==
                  [(p["value"], "" if p["ping_at"] is None else str(p["ping_at"]))
                   for p in timeline.get("pongs", [])])
    shut = dom.find(data_testid="rp-shut")
    status = timeline.get("shut_status")
    results.check(case, "SHUT shown", shut is not None and shut.attrs.get("data-status") ==
                  ("" if status is None else str(status)) and
                  (("SHUT %d" % status) in shut.text() if status is not None else "no SHUT" in shut.text()),
                  " ".join(shut.text().split()) if shut is not None else "missing")


def check_page_safely(results, case, data, dom):
    try:
        check_page(results, case, data, dom)
    except (AttributeError, KeyError, ValueError) as e:
        # An element or attribute the checks rely on is missing.
        results.check(case, "page structure", False, "%s: %s" % (type(e).__name__, e))


def check_stream_facts(results, case, data, stream, exit_code):
    """What qmig must have found in these particular corpus streams."""
    results.equal(case, "exit status follows validity", exit_code, 0 if data["valid"] else 1)
    results.equal(case, "report schema", data.get("schema_version"), 1)
    results.equal(case, "input as given", data["input"], stream)
    results.equal(case, "stream size", data["bytes"], os.path.getsize(stream))
    if case == "postcopy":
        t = data.get("timeline")
        results.check(case, "timeline present with the return path", t is not None)
        if t is not None:
            results.check(case, "timeline has pages and requests",
                          bool(t["pages"]) and bool(t["requests"]),
                          "%d pages, %d requests" % (len(t["pages"]), len(t["requests"])))
            answered = [q["answered_at"] for q in t["requests"] if q["answered_at"] is not None]
            results.check(case, "requests answered after RUN", t["run_offset"] is not None and
                          all(t["run_offset"] <= a < data["bytes"] for a in answered),
                          "RUN at %s, answered at %s" % (t["run_offset"], answered))
            check_latency(results, case, t)
            pings = [(int(r["label"].split("=")[1].split()[0]), r["offset"]) for r in data["records"]
                     if r["kind"] == "command" and r["label"].startswith("PING value=")]
            results.check(case, "PONGs matched to the stream's PINGs",
                          [(p["value"], p["ping_at"]) for p in t["pongs"]] == pings and len(pings) == 4,
                          "%s" % t["pongs"])
            results.equal(case, "SHUT status", t["shut_status"], 0)
            results.equal(case, "return path messages", t["messages"],
                          {"PONG": 4, "REQ_PAGES": 2, "REQ_PAGES_ID": 2, "SHUT": 1})
        results.check(case, "packaged records nested", any(r["depth"] > 0 for r in data["records"]))
    elif case == "pc-q35-7.2":
        results.equal(case, "machine", data["summary"].get("machine"), "pc-q35-7.2")
        results.check(case, "valid", data["valid"])
        check_device_values(results, case, data)
    elif case == "xbzrle":
        results.check(case, "xbzrle pages counted",
                      sum(b["pages"]["xbzrle"] for b in data["ram_blocks"]) > 0)
    elif case == "truncated":
        results.check(case, "invalid", not data["valid"])
        results.check(case, "truncation found at the cut", any(
            f["code"] == "stream.truncated" and f["offset"] == TRUNCATE_AT for f in data["findings"]))


def check_latency(results, case, t):
    """Each answered request's latency is counted from LISTEN or from the
    latest earlier request's answer that is not after its own."""
    ok, seen = True, []
    for q in t["requests"]:
        if q["answered_at"] is None:
            ok = ok and q["asked_after"] is None and q["latency"] is None
            continue
        earlier = [a for a in seen if a <= q["answered_at"]]
        want = max(earlier + [t["listen_offset"]])
        ok = ok and q["asked_after"] == want and q["latency"] == q["answered_at"] - want
        seen.append(q["answered_at"])
    results.check(case, "request latency from LISTEN or the previous answer", ok and bool(seen),
                  "%s" % [(q["asked_after"], q["answered_at"], q["latency"]) for q in t["requests"]])
    results.check(case, "requests keep the return path's order",
                  [q["rp_offset"] for q in t["requests"]] == sorted(q["rp_offset"] for q in t["requests"]))


def check_device_values(results, case, data):
    """The decoded devices' values: every one counted, bounded per device."""
    devices = data["devices"]
    decoded = [v for v in devices if v["decoded"]]
    results.check(case, "decoded devices carry values, counted",
                  decoded and all(len(v["values"]) + v["values_dropped"] == v["fields"] for v in decoded),
                  "%d values listed, %d left out" % (sum(len(v["values"]) for v in decoded),
                                                    sum(v["values_dropped"] for v in decoded)))
    # q35's ICH9LPC holds 16959 values: past the per-device cap.
    capped = [v for v in decoded if v["values_dropped"]]
    results.check(case, "values capped per device",
                  capped and all(len(v["values"]) == MAX_DEVICE_VALUES for v in capped) and
                  all(len(v["values"]) <= MAX_DEVICE_VALUES for v in decoded),
                  ", ".join("%s: %d of %d" % (v["name"], len(v["values"]), v["fields"]) for v in capped))
    cpu = [v for v in decoded if v["name"] == "cpu"]
    results.check(case, "cpu values by path", cpu and any(x[0] == "env.eip" and x[1].startswith("0x")
                                                          for x in cpu[0]["values"]))


def check_ranges_visible(results, case, data, dom, size):
    """Every range of every block owns a pixel of its strip: drawn inside
    the strip, at least 2 px wide, and not wholly under a range drawn later."""
    width = size[0]
    hidden, narrow = [], 0
    for strip in dom.find_all(data_testid="ram-block-strip"):
        block = next(b for b in data["ram_blocks"] if b["name"] == strip.attrs["data-block"])
        svg = [c for c in strip.children if not isinstance(c, str) and c.tag == "svg"][0]
        svg_width = int(svg.attrs["width"])
        owner = [None] * svg_width
        rects = [(int(r.attrs["data-i"]), int(float(r.attrs["x"])), int(float(r.attrs["width"])))
                 for r in svg.find_all(data_testid="ram-range")]
        if svg_width > width:
            hidden.append("%s: %d px strip in a %d px window" % (block["name"], svg_width, width))
        for i, x, w in rects:  # drawing order: later ones cover earlier ones
            for px in range(max(0, x), min(svg_width, x + w)):
                owner[px] = i
        for i, x, w in rects:
            r = block["ranges"][i]
            narrow += (r[1] - r[0]) <= block["page_size"]
            if w < 2 or x < 0 or x + w > svg_width or i not in owner:
                hidden.append("%s range %d [%#x, %#x)" % (block["name"], i, r[0], r[1]))
    results.check(case, "every RAM range visible at %d px" % width, not hidden,
                  "%d single-page ranges; hidden: %s" % (narrow, hidden[:4]))


# ------------------------------------------------------------------ PNG

def read_png(path):
    """(width, height, rows of pixel tuples) of an 8-bit RGB or RGBA PNG."""
    blob = open(path, "rb").read()
    if blob[:8] != b"\x89PNG\r\n\x1a\n":
        raise AssertionError("not a PNG")
    pos, header, idat = 8, None, []
    while pos < len(blob):
        length, kind = struct.unpack(">I4s", blob[pos:pos + 8])
        body = blob[pos + 8:pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
    width, height, bit_depth, colour_type, _, _, interlace = header
    if bit_depth != 8 or colour_type not in (2, 6) or interlace:
        raise AssertionError("unsupported PNG: depth %d, colour type %d, interlace %d" % (
            bit_depth, colour_type, interlace))
    bpp = 3 if colour_type == 2 else 4
    raw = zlib.decompress(b"".join(idat))
    stride = width * bpp
    prev = bytearray(stride)
    rows = []
    for y in range(height):
        start = y * (stride + 1)
        line = _unfilter(raw[start], bytearray(raw[start + 1:start + 1 + stride]), prev, bpp)
        rows.append([tuple(line[i:i + 3]) for i in range(0, stride, bpp)])
        prev = line
    return width, height, rows


def _unfilter(kind, line, prev, bpp):
    n = len(line)
    if kind == 1:
        for i in range(bpp, n):
            line[i] = (line[i] + line[i - bpp]) & 255
    elif kind == 2:
        line = bytearray((a + b) & 255 for a, b in zip(line, prev))
    elif kind == 3:
        for i in range(n):
            left = line[i - bpp] if i >= bpp else 0
            line[i] = (line[i] + ((left + prev[i]) >> 1)) & 255
    elif kind == 4:
        for i in range(n):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
            line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
    elif kind != 0:
        raise AssertionError("bad PNG filter %d" % kind)
    return line


def kind_colours(html):
    """The map's fill colour of each record kind, as the page defines it."""
    table = re.search(r"const KIND_COLOURS = \{(.*?)\};", html, re.S)
    if not table:
        raise AssertionError("no KIND_COLOURS table in the page")
    return {kind: tuple(int(rgb[i:i + 2], 16) for i in (0, 2, 4))
            for kind, rgb in re.findall(r"(\w+): '#([0-9a-fA-F]{6})'", table.group(1))}


def check_screenshot(results, browser, page, html, keep_dir):
    case = "screenshot"
    png = os.path.join(keep_dir, "postcopy-report.png")
    browser.screenshot(page, png, SCREEN)
    print("      screenshot kept at " + png)
    width, height, rows = read_png(png)
    results.equal(case, "size", (width, height), SCREEN)
    counts = {}
    for row in rows:
        for pixel in row:
            counts[pixel] = counts.get(pixel, 0) + 1
    commonest = max(counts.values())
    results.check(case, "not blank", len(counts) >= 50 and commonest < 0.9 * width * height,
                  "%d distinct colours, the commonest covers %.0f%%" % (
                      len(counts), 100.0 * commonest / (width * height)))
    colours = kind_colours(html)
    for kind in ("ram", "device"):
        rgb = colours.get(kind)
        seen = counts.get(rgb, 0)
        results.check(case, "map shows %s records" % kind, rgb is not None and seen >= MIN_COLOUR_PIXELS,
                      "%s covers %d pixels" % ("#%02x%02x%02x" % rgb if rgb else "no colour", seen))


def check_narrow_screenshot(results, browser, page, keep_dir):
    """The page at a phone's width, kept for people to look at."""
    case = "screenshot"
    png = os.path.join(keep_dir, "postcopy-report-narrow.png")
    browser.screenshot(page, png, NARROW)
    print("      screenshot kept at " + png)
    width, height, rows = read_png(png)
    colours = {p for row in rows for p in row}
    results.check(case, "narrow page not blank", (width, height) == NARROW and len(colours) >= 50,
                  "%d distinct colours" % len(colours))


# ------------------------------------------------------------------ main

def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--qmig", help="the qmig binary")
    parser.add_argument("--corpus", help="directory of the qemu-7.2 corpus")
    parser.add_argument("--chromium", default="chromium", help="Chromium binary")
    parser.add_argument("--fake-report", metavar="SAMPLE.json",
                        help="build pages from the template and this data instead of running qmig")
    parser.add_argument("--template", default=DEFAULT_TEMPLATE,
                        help="the page template (with --fake-report)")
    args = parser.parse_args()
    if not args.fake_report and not (args.qmig and args.corpus):
        parser.error("--qmig and --corpus are needed unless --fake-report is given")

    chromium = shutil.which(args.chromium)
    if chromium is None:
        Results().check("setup", "Chromium found", False,
                        "no %s; install it (apt-get install chromium)" % args.chromium)
        return 1

    work = tempfile.mkdtemp(prefix="qmig-report-html-")
    # The screenshot outlives the test, for people to look at.
    keep_dir = (os.environ.get("TEST_UNDECLARED_OUTPUTS_DIR") or
                tempfile.mkdtemp(prefix="qmig-report-shots-"))
    os.makedirs(keep_dir, exist_ok=True)
    results = Results()
    browser = Browser(chromium, work)
    try:
        cases = [("postcopy", "postcopy.mig", "postcopy.rp"), ("pc-q35-7.2", "pc-q35-7.2.mig", None),
                 ("xbzrle", "xbzrle.mig", None), ("truncated", None, None)]
        pages = {}
        for case, stream, return_path in cases:
            out = os.path.join(work, case + ".html")
            if args.fake_report:
                html = fill_template(args.template, json.load(open(args.fake_report)))
                open(out, "w", encoding="utf-8").write(html)
            else:
                if stream is None:
                    # Cut inside the stream: invalid, and the page must still render.
                    stream = os.path.join(work, "pc-i440fx-7.2.truncated.mig")
                    with open(os.path.join(args.corpus, "pc-i440fx-7.2.mig"), "rb") as src:
                        open(stream, "wb").write(src.read(TRUNCATE_AT))
                else:
                    stream = os.path.join(args.corpus, stream)
                rp = os.path.join(args.corpus, return_path) if return_path else None
                html, exit_code = qmig_report(args.qmig, stream, rp, out)
            data = embedded_data(html)
            if not args.fake_report:
                check_stream_facts(results, case, data, stream, exit_code)
            check_page_safely(results, case, data, parse_dom(browser.dom(out)))
            if case in ("postcopy", "pc-q35-7.2"):
                for size in (NARROW, WIDE):
                    check_ranges_visible(results, case, data, parse_dom(browser.dom(out, size)), size)
            pages[case] = (out, html, data)

        if not args.fake_report:
            check_value_bounds(results, browser, args.qmig, work)
            check_large_stream(results, browser, args.qmig, work)

        # The page's size limits: counts must still match, in bounded time.
        out, html, data = pages["postcopy"]
        big = enlarge(data)
        big_page = os.path.join(work, "large.html")
        open(big_page, "w", encoding="utf-8").write(with_data(html, json.dumps(big)))
        started = time.time()
        dom = parse_dom(browser.dom(big_page))
        render_ms = int(body_of(dom).attrs.get("data-render-ms", "-1"))
        results.check("large", "renders in time", 0 <= render_ms <= MAX_RENDER_MS,
                      "%d ms in the page, %.1f s in all" % (render_ms, time.time() - started))
        check_page_safely(results, "large", big, dom)

        # Broken data: a message on the page, never a blank page.
        for name, text in (("not-json", "{oops"), ("no-records", '{"bytes": 10}'),
                           ("bad-record", '{"bytes": 10, "records": [{"offset": "x"}]}')):
            broken = os.path.join(work, name + ".html")
            open(broken, "w", encoding="utf-8").write(with_data(html, text))
            dom = parse_dom(browser.dom(broken))
            error = dom.find(data_testid="error")
            message = " ".join(error.text().split()) if error is not None else ""
            results.check("broken", name + " shows an error",
                          body_of(dom).attrs.get("data-rendered") == "error" and error is not None and
                          "hidden" not in error.attrs and message != "",
                          message[:140] if error is not None else "no error element")

        check_screenshot(results, browser, pages["postcopy"][0], pages["postcopy"][1], keep_dir)
        check_narrow_screenshot(results, browser, pages["postcopy"][0], keep_dir)
    except (AssertionError, OSError, ValueError, subprocess.TimeoutExpired) as e:
        results.check("setup", "test ran to the end", False, str(e))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print("%d checks passed, %d failed%s" % (results.passed, results.failed,
                                             " (pages from --fake-report)" if args.fake_report else ""))
    return 1 if results.failed else 0


if __name__ == "__main__":
    sys.exit(main())
