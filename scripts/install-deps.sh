#!/usr/bin/env bash
# Installs every Debian 12 package pgtally needs to build, run and test. Idempotent.
set -euo pipefail

packages=(
  # build
  g++ make cmake pkg-config git ca-certificates
  prometheus-cpp-dev libpq-dev libyaml-cpp-dev libspdlog-dev libfmt-dev libcivetweb-dev
  libcurl4-openssl-dev zlib1g-dev
  # tests
  libgtest-dev libgmock-dev
  postgresql-15        # server, pgbench and pg_stat_statements
  prometheus           # promtool
  curl procps util-linux
)

if [[ $(id -u) -ne 0 ]]; then
  echo "install-deps: not root; assuming these are installed: ${packages[*]}" >&2
  exit 0
fi

export DEBIAN_FRONTEND=noninteractive
# Package scripts must not start services (there may be no init system, and Debian's own
# PostgreSQL cluster or Prometheus would take ports we do not need).
policy=/usr/sbin/policy-rc.d
created_policy=0
if [[ ! -e $policy ]]; then
  printf '#!/bin/sh\nexit 101\n' >"$policy"
  chmod +x "$policy"
  created_policy=1
fi
trap 'if [[ $created_policy -eq 1 ]]; then rm -f "$policy"; fi' EXIT

missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [[ ${#missing[@]} -eq 0 ]]; then
  echo "install-deps: all packages present"
  exit 0
fi
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install-deps: installed ${missing[*]}"
