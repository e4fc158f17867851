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
tables=${TABLES:-5000}
databases=${DATABASES:-5}
scrapes=${SCRAPES:-50}
dir=${BENCH_DIR:-/tmp/pgtally-bench}
pg_port=${BENCH_PG_PORT:-54339}
web_port=${BENCH_WEB_PORT:-9188}
bindir=${PGTALLY_PG_BINDIR:-/usr/lib/postgresql/15/bin}
dsn="host=127.0.0.1 port=$pg_port user=postgres"

as_postgres() { if [[ $(id -u) -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi; }
psql_do() { "$bindir/psql" -X -q -v ON_ERROR_STOP=1 -d "$dsn dbname=$1" -c "$2"; }

cleanup() {
  [[ -f $dir/pgtally.pid ]] && kill "$(cat "$dir/pgtally.pid")" 2>/dev/null || true
  [[ -f $dir/pgbench.pid ]] && kill "$(cat "$dir/pgbench.pid")" 2>/dev/null || true
  if [[ -f $dir/data/postmaster.pid ]]; then
    as_postgres "$bindir/pg_ctl" stop -D "$dir/data" -m immediate -w >/dev/null 2>&1 || true
  fi
  rm -rf "${dir:?}"
}
cleanup
trap cleanup EXIT
mkdir -p "$dir"
[[ $(id -u) -eq 0 ]] && chown postgres: "$dir"

as_postgres "$bindir/initdb" -D "$dir/data" -A trust -U postgres --no-sync >/dev/null
cat >>"$dir/data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $pg_port
unix_socket_directories = '$dir'
shared_preload_libraries = 'pg_stat_statements'
pg_stat_statements.track = all
fsync = off
max_locks_per_transaction = 256
CONF
as_postgres "$bindir/pg_ctl" start -D "$dir/data" -l "$dir/postgres.log" -w >/dev/null
psql_do postgres "CREATE EXTENSION pg_stat_statements"

for i in $(seq 1 "$databases"); do psql_do postgres "CREATE DATABASE db$i"; done
echo "catalog-scale: creating $tables tables in db1"
psql_do db1 "DO \$\$ BEGIN
  FOR i IN 1..$tables LOOP
    EXECUTE format('CREATE TABLE t%s (id int PRIMARY KEY, v text)', i);
    EXECUTE format('INSERT INTO t%s SELECT g, md5(g::text) FROM generate_series(1, %s) g', i, 1 + i % 50);
  END LOOP;
END \$\$"
psql_do db1 "ANALYZE"
if ((databases >= 2)); then
  "$bindir/pgbench" -i -q -s 2 "$dsn dbname=db2" >/dev/null 2>&1
  "$bindir/pgbench" -n -c 2 -R 50 -T 3600 "$dsn dbname=db2" >/dev/null 2>&1 &
  echo $! >"$dir/pgbench.pid"
fi

DATA_SOURCE_NAME="$dsn dbname=postgres" "$repo/${BUILD_DIR:-build}/bin/pgtally" \
  --web.listen-address="127.0.0.1:$web_port" --log.level=warn >"$dir/pgtally.log" 2>&1 &
echo $! >"$dir/pgtally.pid"
for _ in $(seq 100); do
  curl -sf "http://127.0.0.1:$web_port/healthz" >/dev/null && break
  sleep 0.1
done

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
  trap 'kill $!; cleanup' EXIT
  wait
fi
