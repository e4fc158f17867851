#!/usr/bin/env bash
# Installs the Debian 12 packages pgtally needs to build, run and test. Idempotent: installs only
# what is missing, so a second run is quick and needs no network.
set -euo pipefail

# Usage: install-deps.sh [build]. "build" installs only what compiling pgtally needs (the
# container image's build stage); no argument adds what the tests and the demo need.
build_packages=(
  # toolchain
  build-essential cmake pkg-config git ca-certificates
  # libraries
  prometheus-cpp-dev libpq-dev libyaml-cpp-dev libspdlog-dev libfmt-dev libcivetweb-dev
  libcurl4-openssl-dev zlib1g-dev
)
test_packages=(
  libgtest-dev libgmock-dev
  # PostgreSQL 15 server for the tests and the demo. pg_stat_statements and pgbench ship in it:
  # Debian 12 has no separate postgresql-contrib-15 package (postgresql-15 provides that name).
  postgresql-15
  # a real PgBouncer for the pooler collectors' tests
  pgbouncer
  # promtool (checks the exposition format), the demo's health check, runuser and /proc tools
  prometheus curl procps util-linux
  # certificates and TLS handshakes in the HTTPS tests
  openssl
  # libFuzzer (scripts/fuzz.sh)
  clang libclang-rt-14-dev
  # the collector files against docs/collector.schema.json (tests/schema/validate_collectors.py)
  python3-jsonschema python3-yaml
  # the real postgres_exporter, beside which pgtally must export the same series from the
  # example queries.yaml this package ships (and the benchmarks' peer)
  prometheus-postgres-exporter
)
case ${1:-} in
  build) packages=("${build_packages[@]}") ;;
  "")
    packages=("${build_packages[@]}" "${test_packages[@]}")
    # The Kubernetes manifests' schema test runs on Node.js with packages from the npm registry.
    # Machines that have a Node.js of their own (with npm) keep it.
    if ! command -v npm >/dev/null; then packages+=(nodejs npm); fi
    ;;
  *)
    echo "usage: $0 [build]" >&2
    exit 2
    ;;
esac

missing=()
for package in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$package")
  fi
done
if [[ ${#missing[@]} -eq 0 ]]; then
  echo "install-deps: all ${#packages[@]} packages are installed"
  exit 0
fi
if [[ $(id -u) -ne 0 ]]; then
  echo "install-deps: not root, so skipping apt-get; missing: ${missing[*]}" >&2
  echo "install-deps: run 'sudo bash scripts/install-deps.sh' if the build or tests fail" >&2
  exit 0
fi

export DEBIAN_FRONTEND=noninteractive
# Package scripts must not start services: there may be no init system, and neither Debian's own
# PostgreSQL cluster (port 5432) nor a Prometheus server (9090) is wanted. The tests and the demo
# run their own servers on their own ports. invoke-rc.d asks policy-rc.d; 101 means "not now".
policy=/usr/sbin/policy-rc.d
if [[ ! -e $policy ]]; then
  printf '#!/bin/sh\nexit 101\n' >"$policy"
  chmod +x "$policy"
  trap 'rm -f "$policy"' EXIT
fi

echo "install-deps: installing ${missing[*]}"
for attempt in 1 2 3; do
  if apt-get update -qq; then break; fi
  if [[ $attempt -eq 3 ]]; then exit 1; fi
  echo "install-deps: apt-get update failed, retrying" >&2
  sleep 5
done
apt-get install -y -qq --no-install-recommends \
  -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold -o Dpkg::Use-Pty=0 \
  "${missing[@]}" >/dev/null
echo "install-deps: done"
