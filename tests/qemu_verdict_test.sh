#!/usr/bin/env bash
# Bazel entry for qemu_verdict_test.py (runs it with the system python3).
exec python3 "$(dirname "$0")/qemu_verdict_test.py" "$@"
