#!/usr/bin/env bash
# Bazel entry for seed_corpus_test.py (runs it with the system python3).
exec python3 "$(dirname "$0")/seed_corpus_test.py" "$@"
