#!/usr/bin/env bash
# How pgtally's cost grows with the catalog: runs bench/catalog-scale.sh for a range of tables
# (in one database) and of databases (with few tables each), and prints one Markdown table row
# per shape: series, scrape latency, exporter CPU per scrape and peak RSS.
#
#   bash bench/scaling.sh                                  (after scripts/build.sh; ~10 minutes)
#   TABLE_STEPS="100 1000" DATABASE_STEPS="1 10" SCRAPES=20 bash bench/scaling.sh
set -euo pipefail
cd "$(dirname "$0")/.."
table_steps=${TABLE_STEPS:-100 1000 5000 10000}
database_steps=${DATABASE_STEPS:-1 10 50}
export SCRAPES=${SCRAPES:-20}

row() {
  local out
  out=$(TABLES=$1 DATABASES=$2 bash bench/catalog-scale.sh 2>/dev/null)
  figure() { grep -m1 "^$1" <<<"$out" | awk '{print $NF}'; }
  echo "| $1 | $2 | $(figure series) | $(figure 'latency median') | $(figure 'exporter CPU') |" \
    "$(figure 'peak RSS') |"
}

echo "| tables in db1 | databases | series | latency median (s) | exporter CPU per scrape (s) | peak RSS (KiB) |"
echo "|---:|---:|---:|---:|---:|---:|"
for tables in $table_steps; do row "$tables" 1; done
for databases in $database_steps; do row 100 "$databases"; done
