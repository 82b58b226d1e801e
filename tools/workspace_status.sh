#!/usr/bin/env bash
# Bazel's workspace status: the git revision `qmig --version` reports
# (tools/qmig/BUILD, :version_header). Never fails: outside a git checkout
# the revision is "unknown".
rev="$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)"
if [ "$rev" != unknown ] && [ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ]; then
  rev="$rev-modified"
fi
echo "STABLE_QMIG_GIT_REVISION $rev"
