# shellcheck shell=bash
# Shared by the benchmarks: a throwaway PostgreSQL 15 of a chosen shape. Source it, set the
# variables below (or take the defaults), then call bench_cluster_start; bench_cleanup (run it
# from an EXIT trap) stops everything and removes $dir.
#   tables      tables in db1, each with a primary key index (default 5000)
#   databases   databases db1..dbN (default 5); db2 gets a pgbench load when N >= 2
#   dir         where everything lives (default /tmp/pgtally-bench)
#   pg_port     PostgreSQL's loopback port (default 54339)
tables=${TABLES:-5000}
databases=${DATABASES:-5}
dir=${BENCH_DIR:-/tmp/pgtally-bench}
pg_port=${BENCH_PG_PORT:-54339}
bindir=${PGTALLY_PG_BINDIR:-/usr/lib/postgresql/15/bin}
dsn="host=127.0.0.1 port=$pg_port user=postgres"

as_postgres() { if [[ $(id -u) -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi; }
psql_do() { "$bindir/psql" -X -q -v ON_ERROR_STOP=1 -d "$dsn dbname=$1" -c "$2"; }
psql_value() { "$bindir/psql" -X -q -A -t -v ON_ERROR_STOP=1 -d "$dsn dbname=$1" -c "$2"; }

bench_cleanup() {
  local pidfile
  for pidfile in "$dir"/*.pid; do
    if [[ -f $pidfile ]]; then kill "$(cat "$pidfile")" 2>/dev/null || true; fi
  done
  if [[ -f $dir/data/postmaster.pid ]]; then
    as_postgres "$bindir/pg_ctl" stop -D "$dir/data" -m immediate -w >/dev/null 2>&1 || true
  fi
  rm -rf "${dir:?}"
}

# Waits until $1 answers 200 (10 s at most).
bench_wait_http() {
  for _ in $(seq 100); do
    curl -sf -o /dev/null "$1" && return 0
    sleep 0.1
  done
  echo "bench: no answer from $1" >&2
  return 1
}

bench_cluster_start() {
  bench_cleanup
  mkdir -p "$dir"
  [[ $(id -u) -eq 0 ]] && chown postgres: "$dir"
  as_postgres "$bindir/initdb" -D "$dir/data" -A trust -U postgres --no-sync >/dev/null
  cat >>"$dir/data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $pg_port
unix_socket_directories = '$dir'
shared_preload_libraries = 'pg_stat_statements'
pg_stat_statements.track = all
pg_stat_statements.track_planning = on
fsync = off
max_connections = 200
max_locks_per_transaction = 256
CONF
  as_postgres "$bindir/pg_ctl" start -D "$dir/data" -l "$dir/postgres.log" -w >/dev/null
  psql_do postgres "CREATE EXTENSION pg_stat_statements"
  local i
  for i in $(seq 1 "$databases"); do psql_do postgres "CREATE DATABASE db$i"; done
  echo "bench: creating $tables tables in db1" >&2
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
}

# Fills pg_stat_statements (5,000 entries by default) with distinct statements, one per table.
bench_fill_statements() {
  local n=$((tables < 5000 ? tables : 5000)) i
  for i in $(seq 1 "$n"); do echo "SELECT v FROM t$i WHERE id = 1;"; done |
    "$bindir/psql" -X -q -d "$dsn dbname=db1" >/dev/null
}
