#!/usr/bin/env bash
# Bazel entry for report_html_test.py: qmig and the corpus from the runfiles
# (the source tree when run by hand), Chromium from PATH.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
if [[ -n "${TEST_SRCDIR:-}" ]]; then
  root="${TEST_SRCDIR}/${TEST_WORKSPACE:-qmig}"
else
  root="$(dirname "$here")"
fi
# A missing Chromium is passed on by name, so that the test fails saying so.
chromium="$(command -v chromium || echo chromium)"
exec python3 "$here/report_html_test.py" \
  --qmig "$root/tools/qmig/qmig" \
  --corpus "$root/corpus/qemu-7.2" \
  --chromium "$chromium" \
  "$@"
