#!/usr/bin/env bash
# Bazel entry for inspect_commands_test.py (runs it with the system python3).
exec python3 "$(dirname "$0")/inspect_commands_test.py" "$@"
