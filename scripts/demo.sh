#!/usr/bin/env bash
# The README's first command: install, build, start a throwaway PostgreSQL 15 with a little
# pgbench load, start pgtally on it and print the URL. `scripts/demo.sh stop` tears it down.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
demo=${PGTALLY_DEMO_DIR:-/tmp/pgtally-demo}
pg_port=${PG_PORT:-54329}
web_port=${PGTALLY_PORT:-9187}
bindir=/usr/lib/postgresql/15/bin

as_postgres() {
  if [[ $(id -u) -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}

stop() {
  for name in pgbench pgtally; do
    if [[ -f $demo/$name.pid ]]; then
      kill "$(cat "$demo/$name.pid")" 2>/dev/null || true
      rm -f "$demo/$name.pid"
    fi
  done
  if [[ -f $demo/data/postmaster.pid ]]; then
    as_postgres "$bindir/pg_ctl" -D "$demo/data" -m fast -w stop >/dev/null 2>&1 || true
  fi
  rm -rf "$demo"
}

if [[ ${1:-} == stop ]]; then
  stop
  echo "demo stopped"
  exit 0
fi

bash scripts/install-deps.sh
bash scripts/build.sh
stop

mkdir -p "$demo"
if [[ $(id -u) -eq 0 ]]; then chown postgres "$demo"; fi
as_postgres "$bindir/initdb" -D "$demo/data" -A trust -U postgres --no-sync -E UTF8 --locale=C >"$demo/initdb.log"
cat >>"$demo/data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $pg_port
unix_socket_directories = '$demo'
shared_preload_libraries = 'pg_stat_statements'
pg_stat_statements.track = all
track_io_timing = on
CONF
as_postgres "$bindir/pg_ctl" -D "$demo/data" -l "$demo/postgres.log" -w start >/dev/null
psql=(psql -X -q -h 127.0.0.1 -p "$pg_port" -U postgres)
"${psql[@]}" -d postgres -c "CREATE EXTENSION pg_stat_statements" -c "CREATE DATABASE bench"
"$bindir/pgbench" -q -i -s 5 -h 127.0.0.1 -p "$pg_port" -U postgres bench >"$demo/pgbench-init.log" 2>&1

# A light, rate-limited load for an hour, so the metrics move.
nohup "$bindir/pgbench" -n -c 2 -R 20 -T 3600 -h 127.0.0.1 -p "$pg_port" -U postgres bench \
  >"$demo/pgbench.log" 2>&1 &
echo $! >"$demo/pgbench.pid"

DATA_SOURCE_NAME="host=127.0.0.1 port=$pg_port user=postgres dbname=postgres" \
  nohup "$repo/build/bin/pgtally" --web.listen-address=":$web_port" >"$demo/pgtally.log" 2>&1 &
echo $! >"$demo/pgtally.pid"

for _ in $(seq 1 50); do
  if curl -sf "http://localhost:$web_port/healthz" >/dev/null; then
    echo
    echo "pgtally is serving PostgreSQL on 127.0.0.1:$pg_port with pgbench load:"
    echo "  http://localhost:$web_port/metrics"
    echo
    echo "  curl -s localhost:$web_port/metrics | grep -E '^pg_up|^pg_stat_database_xact_commit_total'"
    echo "  logs: $demo/pgtally.log    stop: bash scripts/demo.sh stop"
    exit 0
  fi
  sleep 0.2
done
echo "pgtally did not start; its log:" >&2
cat "$demo/pgtally.log" >&2
exit 1
