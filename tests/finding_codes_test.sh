#!/usr/bin/env bash
# Bazel entry for finding_codes_test.py (runs it with the system python3).
exec python3 "$(dirname "$0")/finding_codes_test.py" "$@"
