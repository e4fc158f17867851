#!/usr/bin/env bash
# The README's second command and the body of CI: install what is needed, build with warnings as
# errors, run every unit and integration test, then again with sanitizers, then the fuzzers.
# Extra arguments go to ctest (e.g. -R unit).
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=${BUILD_DIR:-build}
# Where the time goes, printed as each stage ends.
stage_start=$SECONDS
stage_done() {
  echo "test.sh: $1 took $((SECONDS - stage_start)) s (total $SECONDS s)"
  stage_start=$SECONDS
}

bash scripts/install-deps.sh
# The Kubernetes schema test's packages, pinned by tests/kubernetes/package-lock.json.
npm ci --prefix tests/kubernetes --no-audit --no-fund --loglevel=error
stage_done "installing"
bash scripts/build.sh
stage_done "the build"
# --no-tests=error: a build that registered no tests must fail, not pass quietly.
ctest --test-dir "$build_dir" --output-on-failure --no-tests=error -j2 "$@"
stage_done "the tests"

# Then the whole suite again under AddressSanitizer + UndefinedBehaviorSanitizer and under
# ThreadSanitizer, and the fuzzers for a fixed number of runs. PGTALLY_QUICK=1 skips these (a local
# edit-and-test loop); CI never does.
if [[ ${PGTALLY_QUICK:-0} != 1 ]]; then
  bash scripts/sanitize.sh address "$@"
  stage_done "ASan + UBSan (build and tests)"
  bash scripts/sanitize.sh thread "$@"
  stage_done "TSan (build and tests)"
  bash scripts/fuzz.sh --ci
  stage_done "fuzzing (build and runs)"
fi
