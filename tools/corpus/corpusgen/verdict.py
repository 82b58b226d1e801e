"""What a real QEMU destination says about a stream."""

import os
import shlex
import shutil
import tempfile

from .guest import check_pages
from .qemu import BASE_ARGS, TMP_TOKEN, QMPError, Vm, set_caps, set_params, wait_status

QMP_ANSWER_S = 10       # a destination that does not answer QMP for this long hangs


def _failure_message(stderr):
    lines = [l for l in stderr.splitlines() if l.strip()]
    return "\n".join(lines[-6:])


def verdict(path, machine, extra_args=(), caps=(), params=None, timeout=60,
            expect_pages=None, tmpdir=None):
    """Load `path` into a fresh `-S -incoming defer` destination.

    Returns {"status": "completed"|"failed"|"timeout", "exit_code", "message"}.
    With expect_pages ([{addr, sha256}]) guest pages are read back via qtest
    after a successful load and the result is added as "ram_check".
    """
    own = tmpdir is None
    if own:
        tmpdir = tempfile.mkdtemp(prefix="qmig-verdict-", dir="/tmp")
    args = ["-machine", machine] + BASE_ARGS + list(extra_args) + ["-S", "-incoming", "defer"]
    args = [a.replace(TMP_TOKEN, tmpdir) for a in args]
    vm = Vm("verdict", args, tmpdir, qtest=True, timeout=timeout + 30)
    res = {}
    try:
        vm.start()
        set_caps(vm, caps)
        set_params(vm, params)
        vm.qmp.cmd("migrate-incoming", uri="exec:cat " + shlex.quote(os.path.abspath(path)))
        r = wait_status(vm, ("completed",), timeout, qmp_timeout=QMP_ANSWER_S)
        st = r.get("status")
        if st == "completed":
            res = {"status": "completed"}
            if expect_pages:
                res["ram_check"] = check_pages(vm, expect_pages)
            vm.quit()
            res["exit_code"] = vm.exit_code
            res["message"] = _failure_message(vm.stderr_text())
        elif st == "timeout" and r.get("qmp_unresponsive"):
            vm.kill()
            res = {"status": "timeout", "exit_code": vm.exit_code,
                   "message": _failure_message(vm.stderr_text()) +
                   ("\n" if vm.stderr_text().strip() else "") +
                   "destination stopped answering QMP (no reply in %ss); killed" % QMP_ANSWER_S,
                   "qmp_unresponsive": True}
        elif st == "timeout":
            vm.kill()
            res = {"status": "timeout", "exit_code": vm.exit_code,
                   "message": "destination still waiting after %ss; killed" % timeout}
        else:
            # 7.2 exits with status 1 after a failed incoming migration
            vm.wait_exit(15)
            vm.kill()
            res = {"status": "failed", "exit_code": vm.exit_code,
                   "message": _failure_message(vm.stderr_text())}
    except QMPError as e:
        vm.wait_exit(15)
        vm.kill()
        res = {"status": "failed", "exit_code": vm.exit_code,
               "message": _failure_message(vm.stderr_text()) or str(e)}
    finally:
        vm.kill()
        if own:
            shutil.rmtree(tmpdir, ignore_errors=True)
    return res

