#!/usr/bin/env bash
# Configures and builds pgtally and its tests into ${BUILD_DIR:-build}; warnings are errors.
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=${BUILD_DIR:-build}
# PGTALLY_BUILD_TESTS=OFF leaves the tests out (the container image does).
cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPGTALLY_WERROR=ON \
  -DPGTALLY_BUILD_TESTS="${PGTALLY_BUILD_TESTS:-ON}" >/dev/null
cmake --build "$build_dir" -j"$(nproc)"
