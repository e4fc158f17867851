#!/usr/bin/env bash
# Configures and builds pgtally and its tests into ${BUILD_DIR:-build}; warnings are errors.
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=${BUILD_DIR:-build}
cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPGTALLY_WERROR=ON >/dev/null
cmake --build "$build_dir" -j"$(nproc)"
