#!/usr/bin/env bash
# The README's first command: install, build, start a throwaway PostgreSQL 15 with a light pgbench
# load, start pgtally on it and print the URL. Running it again replaces the previous demo.
#
#   bash scripts/demo.sh        start (or restart) the demo
#   bash scripts/demo.sh stop   stop pgtally, pgbench and PostgreSQL and remove the demo's files
#
# Settings (environment): PGTALLY_DEMO_DIR (/tmp/pgtally-demo), PGTALLY_DEMO_PG_PORT (54329),
# PGTALLY_PORT (9187), BUILD_DIR (build), PGTALLY_PG_BINDIR (/usr/lib/postgresql/15/bin).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
demo=${PGTALLY_DEMO_DIR:-/tmp/pgtally-demo}
pg_port=${PGTALLY_DEMO_PG_PORT:-54329}
web_port=${PGTALLY_PORT:-9187}
build_dir=${BUILD_DIR:-build}
[[ $build_dir == /* ]] || build_dir=$repo/$build_dir
bindir=${PGTALLY_PG_BINDIR:-/usr/lib/postgresql/15/bin}
dsn="host=127.0.0.1 port=$pg_port user=postgres"

# initdb and postgres refuse to run as root.
as_postgres() {
  if [[ $(id -u) -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# Stops the process recorded in $demo/NAME.pid if it is still that program (a pid file can
# outlive its process, and the pid be reused), and waits up to 10 s for it so that its port is
# free again. A zombie counts as gone: init may take a while to reap it.
stop_process() {
  local name=$1 file=$demo/$1.pid pid state
  [[ -f $file ]] || return 0
  pid=$(<"$file")
  if [[ $(ps -o comm= -p "$pid" 2>/dev/null) == "$name" ]]; then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do
      state=$(ps -o stat= -p "$pid" 2>/dev/null) || break
      [[ $state != Z* ]] || break
      sleep 0.2
    done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$file"
}

stop_demo() {
  stop_process pgtally
  stop_process pgbench
  if [[ -f $demo/data/postmaster.pid ]]; then
    as_postgres "$bindir/pg_ctl" stop -D "$demo/data" -m fast -w >/dev/null 2>&1 || true
  fi
  rm -rf "${demo:?}"
}

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Prints what failed and the tail of its log, and leaves everything in place for a look.
fail() {
  echo "demo: $1; the end of $2:" >&2
  tail -n 30 "$2" >&2 || true
  echo "demo: clean up with: bash scripts/demo.sh stop" >&2
  exit 1
}

case ${1:-} in
  stop)
    stop_demo
    echo "demo: stopped"
    exit 0
    ;;
  "") ;;
  *)
    echo "usage: $0 [stop]" >&2
    exit 2
    ;;
esac

bash scripts/install-deps.sh
bash scripts/build.sh
stop_demo
# Checked up front: a server already on the web port would answer pgtally's health check.
for port in "$pg_port" "$web_port"; do
  if port_in_use "$port"; then
    echo "demo: port $port is taken; choose others with PGTALLY_DEMO_PG_PORT / PGTALLY_PORT" >&2
    exit 1
  fi
done

echo "demo: starting PostgreSQL 15 on 127.0.0.1:$pg_port in $demo"
mkdir -p "$demo"
if [[ $(id -u) -eq 0 ]]; then chown postgres: "$demo"; fi
as_postgres "$bindir/initdb" -D "$demo/data" -A trust -U postgres --no-sync -E UTF8 --locale=C \
  >"$demo/initdb.log" 2>&1 || fail "initdb failed" "$demo/initdb.log"
cat >>"$demo/data/postgresql.conf" <<CONF

# pgtally demo
listen_addresses = '127.0.0.1'
port = $pg_port
unix_socket_directories = '$demo'
shared_preload_libraries = 'pg_stat_statements'
pg_stat_statements.track = all
track_io_timing = on
CONF
as_postgres "$bindir/pg_ctl" start -D "$demo/data" -l "$demo/postgres.log" -w -t 30 \
  >/dev/null || fail "PostgreSQL did not start" "$demo/postgres.log"

"$bindir/psql" -X -q -v ON_ERROR_STOP=1 -d "$dsn dbname=postgres" \
  -c "CREATE EXTENSION pg_stat_statements" -c "CREATE DATABASE bench"
echo "demo: filling database bench (pgbench -i -s 5)"
"$bindir/pgbench" -i -q -s 5 "$dsn dbname=bench" >"$demo/pgbench-init.log" 2>&1 ||
  fail "pgbench -i failed" "$demo/pgbench-init.log"

# A light load, 20 transactions a second for at most an hour, so that the metrics move.
nohup "$bindir/pgbench" -n -c 2 -R 20 -T 3600 "$dsn dbname=bench" \
  </dev/null >"$demo/pgbench.log" 2>&1 &
echo $! >"$demo/pgbench.pid"

echo "demo: starting pgtally on :$web_port"
DATA_SOURCE_NAME="$dsn dbname=postgres" nohup "$build_dir/bin/pgtally" \
  --web.listen-address=":$web_port" </dev/null >"$demo/pgtally.log" 2>&1 &
pgtally_pid=$!
echo "$pgtally_pid" >"$demo/pgtally.pid"

deadline=$((SECONDS + 30))
until curl -sf "http://127.0.0.1:$web_port/healthz" >/dev/null; do
  if ! kill -0 "$pgtally_pid" 2>/dev/null; then fail "pgtally exited" "$demo/pgtally.log"; fi
  if ((SECONDS >= deadline)); then fail "pgtally not healthy after 30 s" "$demo/pgtally.log"; fi
  sleep 0.2
done

cat <<DONE

pgtally is exporting PostgreSQL 15 on 127.0.0.1:$pg_port (with pgbench load on database bench):

  http://localhost:$web_port/metrics

  curl -s localhost:$web_port/metrics | grep -E '^pg_up|^pg_stat_database_xact_commit_total'

logs: $demo/{pgtally,postgres,pgbench}.log
stop: bash scripts/demo.sh stop
DONE
