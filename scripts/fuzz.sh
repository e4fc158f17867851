#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (ASan + UBSan) and runs each for a bounded time.
#
#   bash scripts/fuzz.sh [SECONDS]     # explore: a random seed, default 60 s per target
#   bash scripts/fuzz.sh --ci          # CI: a fixed seed and a fixed number of runs per target
#
# CI's run is reproducible: the same inputs in the same order on every machine, so a clone that
# passes here passes in CI, and a finding there can be replayed here. Exploring finds new bugs;
# do it for ten minutes or more after touching a loader or the exposition code.
#
# Seeds: tests/fuzz/corpus/<target>/ plus, for the config target, every file in queries/ and
# deploy/. A crash stops the run with the input saved as crash-*; add it to
# tests/fuzz/corpus/<target>/ once fixed, so every later run replays it.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ ${1:-} == --ci ]]; then
  declare -A budget=([config]="-seed=1 -runs=15000" [exposition]="-seed=1 -runs=400000")
else
  declare -A budget=([config]="-max_total_time=${1:-60}" [exposition]="-max_total_time=${1:-60}")
fi
build_dir=${FUZZ_BUILD_DIR:-build-fuzz}
CXX=clang++ cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPGTALLY_FUZZ=ON \
  -DPGTALLY_BUILD_TESTS=OFF >/dev/null
cmake --build "$build_dir" -j"$(nproc)" --target config_fuzz exposition_fuzz
export ASAN_OPTIONS="detect_leaks=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for target in config exposition; do
  mkdir -p "$work/$target"
  seeds=("tests/fuzz/corpus/$target")
  if [[ $target == config ]]; then seeds+=(queries queries/examples deploy/prometheus); fi
  echo "fuzz: $target (${budget[$target]})"
  # -max_len bounds a single input; -rss_limit_mb and -timeout turn blow-ups into findings.
  # libFuzzer exits non-zero on a finding; its log is kept for a look.
  if ! "$build_dir/bin/${target}_fuzz" "$work/$target" "${seeds[@]}" \
    ${budget[$target]} -max_len=65536 -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$build_dir/crash-$target-" >"$build_dir/$target.log" 2>&1; then
    tail -n 40 "$build_dir/$target.log" >&2
    echo "fuzz: $target found a problem; the input is in $build_dir/crash-$target-*" >&2
    exit 1
  fi
  grep -E "^stat::(number_of_executed_units|peak_rss_mb)|^#[0-9]+ +DONE" "$build_dir/$target.log"
done
echo "fuzz: no findings"
