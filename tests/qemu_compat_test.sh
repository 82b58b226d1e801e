#!/usr/bin/env bash
# Bazel entry for compat_test.py --live: qmig compat against the real QEMUs.
exec python3 "$(dirname "$0")/compat_test.py" --live "$@"
