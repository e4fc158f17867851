#!/bin/sh
# Run by the postgres image's entrypoint when it initialises the database (files in
# /docker-entrypoint-initdb.d): creates pgtally's login role, which can read the statistics views
# (pg_monitor) and nothing else, with the password from the mounted Secret.
set -eu
password=$(cat "$PGTALLY_PASSWORD_FILE")
psql -v ON_ERROR_STOP=1 -v password="$password" \
  --username "${POSTGRES_USER:-postgres}" --dbname "${POSTGRES_DB:-${POSTGRES_USER:-postgres}}" <<'SQL'
CREATE ROLE pgtally LOGIN IN ROLE pg_monitor PASSWORD :'password';
CREATE EXTENSION IF NOT EXISTS pg_stat_statements;
SQL
