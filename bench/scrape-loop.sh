#!/usr/bin/env bash
# Scrapes a running exporter N times in a row, asking for gzip as Prometheus does, and prints
# what one scrape costs it: latency (median, p99), CPU seconds per scrape and memory from /proc,
# series, and bytes (as sent, and decompressed).
#   bench/scrape-loop.sh PID [URL] [N]
# e.g. after scripts/demo.sh:  bench/scrape-loop.sh "$(cat /tmp/pgtally-demo/pgtally.pid)"
set -euo pipefail
pid=${1:?usage: scrape-loop.sh PID [URL] [N]}
url=${2:-http://localhost:9187/metrics}
n=${3:-100}
ticks=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }

body=$(mktemp)
times=$(mktemp)
trap 'rm -f "$body" "$times"' EXIT

scrape() { curl -sf --compressed -o "$body" -w '%{time_total} %{size_download}\n' "$url"; }
scrape >/dev/null  # warm up: connections, caches
before=$(cpu_ticks)
for _ in $(seq "$n"); do scrape >>"$times"; done
after=$(cpu_ticks)

sort -g "$times" -o "$times"
median=$(awk -v n="$n" 'NR == int((n + 1) / 2) {print $1}' "$times")
p99=$(awk -v n="$n" 'NR == int(n * 0.99 + 0.999) {print $1}' "$times")
printf '%-28s %s\n' \
  "scrapes" "$n" \
  "series" "$(grep -vc '^#' "$body")" \
  "response bytes (sent)" "$(tail -1 "$times" | cut -d' ' -f2)" \
  "response bytes (decoded)" "$(wc -c <"$body")" \
  "latency median (s)" "$median" \
  "latency p99 (s)" "$p99" \
  "exporter CPU per scrape (s)" "$(awk -v d="$((after - before))" -v t="$ticks" -v n="$n" 'BEGIN {printf "%.5f", d / t / n}')" \
  "peak RSS (KiB)" "$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")" \
  "RSS now (KiB)" "$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")"
