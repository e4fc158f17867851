#!/usr/bin/env bash
# Builds pgtally and its tests with sanitizers and runs the whole test suite on that build, the
# pgtally binary the integration tests start included. Any report fails the run.
#
#   bash scripts/sanitize.sh address   # AddressSanitizer + UndefinedBehaviorSanitizer, build-asan/
#   bash scripts/sanitize.sh thread    # ThreadSanitizer, build-tsan/
#
# Extra arguments go to ctest. Expects scripts/install-deps.sh (and npm ci) to have run.
set -euo pipefail
cd "$(dirname "$0")/.."
kind=${1:?usage: sanitize.sh address|thread [ctest arguments]}
shift
case $kind in
  address) build_dir=build-asan ;;
  thread) build_dir=build-tsan ;;
  *)
    echo "usage: sanitize.sh address|thread [ctest arguments]" >&2
    exit 2
    ;;
esac
supp=$(pwd)/.ci/sanitizers
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:exitcode=23:strict_string_checks=1:detect_stack_use_after_return=1"
export LSAN_OPTIONS="suppressions=$supp/lsan.supp:print_suppressions=0"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:exitcode=23"
export TSAN_OPTIONS="halt_on_error=1:exitcode=23:second_deadlock_stack=1:suppressions=$supp/tsan.supp"
cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPGTALLY_WERROR=ON \
  -DPGTALLY_SANITIZE="$kind" >/dev/null
cmake --build "$build_dir" -j"$(nproc)"
# Sanitized code is slower: allow tests more time.
ctest --test-dir "$build_dir" --output-on-failure --no-tests=error -j2 --timeout 900 "$@"
