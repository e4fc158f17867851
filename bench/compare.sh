#!/usr/bin/env bash
# pgtally and postgres_exporter side by side, on one PostgreSQL 15 in one run: both collect the
# same data (postgres_exporter runs pgtally's built-in SQL, converted by
# bench/postgres_exporter_queries.py; docs/benchmarks.md explains the mapping), and they are
# scraped in alternating rounds so that noise on the machine hits both alike. Each logs in as
# its own pg_monitor role, so pg_stat_statements tells their SQL time apart.
#
#   bash bench/compare.sh                      (after scripts/build.sh; a few minutes)
#   TABLES=1000 DATABASES=3 ROUNDS=5 SCRAPES=50 bash bench/compare.sh
#
# Needs prometheus-postgres-exporter and python3-yaml (apt-get install -y ...). Prints a
# Markdown table: medians over the rounds, and postgres_exporter / pgtally ratios.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
scrapes=${SCRAPES:-50}
rounds=${ROUNDS:-3}
pgtally_port=${PGTALLY_PORT:-9188}
pge_port=${PGE_PORT:-9189}
pge=${PGE_BINARY:-prometheus-postgres-exporter}
source bench/lib.sh
if ! command -v "$pge" >/dev/null || ! python3 -c 'import yaml' 2>/dev/null; then
  echo "compare: needs prometheus-postgres-exporter and python3-yaml" >&2
  exit 2
fi
trap bench_cleanup EXIT
[[ -n ${KEEP:-} ]] && trap - EXIT
bench_cluster_start
bench_fill_statements
for role in pgtally pge; do psql_do postgres "CREATE ROLE $role LOGIN IN ROLE pg_monitor"; done

DATA_SOURCE_NAME="$dsn user=pgtally dbname=postgres" "$repo/${BUILD_DIR:-build}/bin/pgtally" \
  --web.listen-address="127.0.0.1:$pgtally_port" --log.level=warn >"$dir/pgtally.log" 2>&1 &
echo $! >"$dir/pgtally.pid"
bench_wait_http "http://127.0.0.1:$pgtally_port/metrics"
# Optional collectors pgtally found unavailable (no privilege, no extension) it no longer runs:
# postgres_exporter would run them, fail and log on every scrape, so they are left out for it.
unavailable=$(curl -sf "http://127.0.0.1:$pgtally_port/metrics" |
  sed -nE 's/^pgtally_collector_skipped\{collector="([^"]+)",reason="unavailable"\} 1$/\1/p' |
  paste -sd, -)
version=$(psql_value postgres "SHOW server_version_num")
python3 bench/postgres_exporter_queries.py "$version" "$unavailable" >"$dir/pge-queries.yaml"
# Only the queries file: its own collectors would duplicate it (and clash on pg_database_size_bytes).
DATA_SOURCE_NAME="postgresql://pge@127.0.0.1:$pg_port/postgres?sslmode=disable" "$pge" \
  --web.listen-address="127.0.0.1:$pge_port" --disable-default-metrics \
  --disable-settings-metrics --no-collector.database --no-collector.bgwriter \
  --auto-discover-databases \
  --extend.query-path="$dir/pge-queries.yaml" --log.level=warn >"$dir/pge.log" 2>&1 &
echo $! >"$dir/pge.pid"
bench_wait_http "http://127.0.0.1:$pge_port/metrics"

declare -A figures  # "<exporter>|<figure>" -> values, one per round, space-separated
record() { figures["$1|$2"]+="$3 "; }

# One round of one exporter: scrape-loop.sh's figures plus its SQL time from
# pg_stat_statements (reset for its role first; the warm-up scrape counts, so N + 1 scrapes).
measure() {
  local name=$1 role=$2 port=$3 line key value sql
  psql_value postgres "SELECT pg_stat_statements_reset('$role'::regrole::oid)" >/dev/null
  while IFS= read -r line; do
    key=$(sed -E 's/ {2,}.*//' <<<"$line")
    value=$(awk '{print $NF}' <<<"$line")
    record "$name" "$key" "$value"
  done < <(bash bench/scrape-loop.sh "$(cat "$dir/$name.pid")" \
    "http://127.0.0.1:$port/metrics" "$scrapes")
  read -r sql plan < <(psql_value postgres "
    SELECT round((coalesce(sum(total_exec_time + total_plan_time), 0) / 1000 / ($scrapes + 1))::numeric, 5),
           round((coalesce(sum(total_plan_time), 0) / 1000 / ($scrapes + 1))::numeric, 5)
    FROM pg_stat_statements WHERE userid = '$role'::regrole" | tr '|' ' ')
  record "$name" "SQL time per scrape (s)" "$sql"
  record "$name" "of which planning (s)" "$plan"
}

for round in $(seq "$rounds"); do
  echo "compare: round $round of $rounds" >&2
  measure pgtally pgtally "$pgtally_port"
  measure pge pge "$pge_port"
done

median() { tr ' ' '\n' <<<"$1" | grep . | sort -g | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }
echo
echo "$databases databases, $tables tables in db1, pg_stat_statements with" \
  "$(psql_value postgres "SELECT count(*) FROM pg_stat_statements") entries;" \
  "$rounds alternating rounds of $scrapes scrapes; medians over the rounds"
echo
echo "| figure | pgtally | postgres_exporter | postgres_exporter / pgtally |"
echo "|---|---:|---:|---:|"
for key in "series" "response bytes (sent)" "response bytes (decoded)" "latency median (s)" \
  "latency p99 (s)" "SQL time per scrape (s)" "of which planning (s)" "exporter CPU per scrape (s)" \
  "peak RSS (KiB)" "RSS now (KiB)"; do
  a=$(median "${figures["pgtally|$key"]}")
  b=$(median "${figures["pge|$key"]}")
  ratio=$(awk -v a="$a" -v b="$b" 'BEGIN {if (a > 0) printf "%.2f", b / a; else print "-"}')
  label=$key
  [[ $key == "RSS now (KiB)" ]] && label="steady RSS (KiB)"
  echo "| $label | $a | $b | $ratio |"
done
for name in pgtally pge; do
  lat=$(median "${figures["$name|latency median (s)"]}")
  sql=$(median "${figures["$name|SQL time per scrape (s)"]}")
  overhead=$(awk -v l="$lat" -v s="$sql" \
    'BEGIN {printf "%.4f s (%.0f%% of the latency)", l - s, (l > 0 ? 100 * (l - s) / l : 0)}')
  echo "exporter overhead, $name: latency - SQL time = $overhead"
done
