#!/usr/bin/env bash
# What the built-in collectors cost on a big catalog: starts a throwaway PostgreSQL 15 with
# DATABASES databases (default 5), TABLES tables (default 5000, each with a primary key index)
# in the first of them and a pgbench load in another, then runs pgtally with the built-in
# collectors and scrapes it with bench/scrape-loop.sh. Prints series, latency, CPU, memory, the
# slowest collectors and the series per collector.
#
#   bash bench/catalog-scale.sh            (after scripts/build.sh; takes a minute or two)
#   TABLES=10000 DATABASES=20 bash bench/catalog-scale.sh
#   HOLD=1 bash bench/catalog-scale.sh     (keeps everything running afterwards, to look around)
#
# Everything lives in $BENCH_DIR (default /tmp/pgtally-bench) and is removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
scrapes=${SCRAPES:-50}
web_port=${BENCH_WEB_PORT:-9188}
source bench/lib.sh
trap bench_cleanup EXIT
bench_cluster_start

DATA_SOURCE_NAME="$dsn dbname=postgres" "$repo/${BUILD_DIR:-build}/bin/pgtally" \
  --web.listen-address="127.0.0.1:$web_port" --log.level=warn >"$dir/pgtally.log" 2>&1 &
echo $! >"$dir/pgtally.pid"
bench_wait_http "http://127.0.0.1:$web_port/healthz"

url="http://127.0.0.1:$web_port/metrics"
echo "catalog-scale: $databases databases, $tables tables in db1; $scrapes scrapes"
bash bench/scrape-loop.sh "$(cat "$dir/pgtally.pid")" "$url" "$scrapes"
body=$(curl -sf "$url")
echo
echo "scrape duration reported by pgtally (s): $(grep '^pgtally_scrape_duration_seconds ' <<<"$body" | cut -d' ' -f2)"
echo "failed collectors: $(grep -c '^pgtally_collector_success{.*} 0$' <<<"$body" || true)"
echo
echo "slowest collectors (seconds, summed over databases; cached ones show the run they came from):"
grep '^pgtally_collector_duration_seconds{' <<<"$body" | sed 's/.*collector="\([^"]*\)"} /\1 /' |
  sort -k2 -g -r | head -8 | awk '{printf "  %-40s %s\n", $1, $2}'
echo "series per collector (largest):"
grep '^pgtally_collector_series{' <<<"$body" | sed 's/.*collector="\([^"]*\)"} /\1 /' |
  sort -k2 -g -r | head -8 | awk '{printf "  %-40s %s\n", $1, $2}'
grep '^pgtally_collector_rows_omitted{' <<<"$body" | sed 's/^/  /' || true
if [[ -n ${HOLD:-} ]]; then
  echo "holding: pgtally at $url, PostgreSQL at \"$dsn\"; kill $$ to clean up"
  sleep infinity &
  trap 'kill $!; bench_cleanup' EXIT
  wait
fi
