#!/usr/bin/env bash
# Bazel entry for hostile_commands_test.py (runs it with the system python3).
exec python3 "$(dirname "$0")/hostile_commands_test.py" "$@"
