#!/usr/bin/env bash
# The README's second command and the body of CI: install what is needed, build with warnings as
# errors, run every unit and integration test. Extra arguments go to ctest (e.g. -R unit).
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=${BUILD_DIR:-build}

bash scripts/install-deps.sh
# The Kubernetes schema test's packages, pinned by tests/kubernetes/package-lock.json.
npm ci --prefix tests/kubernetes --no-audit --no-fund --loglevel=error
bash scripts/build.sh
# --no-tests=error: a build that registered no tests must fail, not pass quietly.
ctest --test-dir "$build_dir" --output-on-failure --no-tests=error -j2 "$@"
