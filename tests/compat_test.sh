#!/usr/bin/env bash
# Bazel entry for compat_test.py (runs it with the system python3).
exec python3 "$(dirname "$0")/compat_test.py" "$@"
