#!/usr/bin/env python3
"""Writes a postgres_exporter queries file (--extend.query-path) that runs the same SQL as
pgtally's built-in collectors, so that a benchmark compares what the two exporters add to the
same database work, not two different sets of queries.

    python3 bench/postgres_exporter_queries.py SERVER_VERSION_NUM [SKIP,...] > queries.yaml

The mapping, collector by collector:
- the query variant pgtally would pick for SERVER_VERSION_NUM (and a primary) is used verbatim;
  collectors with no such variant, PgBouncer's, standby-only ones and those named in SKIP (the
  optional ones pgtally found unavailable and so no longer runs) are left out;
- parameters ({{name}}) become SQL literals of their default values;
- scope: database -> master: false (run on every database with --auto-discover-databases),
  with a datname column added, the label pgtally adds itself; scope: server -> master: true
  (the DSN's database only);
- labels -> usage LABEL, counter values -> COUNTER, gauges -> GAUGE; the metric names are
  postgres_exporter's (<collector>_<column>). Scales (milliseconds to seconds and the like) are
  not applied: they change no cost.
- cache_ttl -> cache_seconds.
"""

import glob
import os
import sys

import yaml


def literal(value):
    text = str(value).lower() if isinstance(value, bool) else str(value)
    return "'" + text.replace("'", "''") + "'"


def in_range(spec, version):
    return spec.get("min_version", 0) <= version <= spec.get("max_version", 10**9)


def pick_variant(collector, version):
    if not in_range(collector, version):
        return None
    if "query" in collector:
        return collector
    for variant in collector.get("queries", []):
        if in_range(variant, version):
            return variant
    return None


def duration_seconds(text):
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    for suffix in ("ms", "s", "m", "h"):
        if str(text).endswith(suffix):
            return int(float(str(text)[: -len(suffix)]) * units[suffix])
    return int(text)


def convert(collector, version):
    if collector.get("target_type", "postgres") != "postgres":
        return None
    if collector.get("role", "any") == "standby":
        return None
    variant = pick_variant(collector, version)
    if variant is None:
        return None
    sql = variant["query"]
    for name, value in (collector.get("parameters") or {}).items():
        sql = sql.replace("{{" + name + "}}", literal(value))
    metrics = []
    per_database = collector.get("scope", "server") == "database"
    if per_database:
        sql = "SELECT current_database() AS datname, q.* FROM (\n" + sql + ") AS q\n"
        metrics.append({"datname": {"usage": "LABEL", "description": "datname"}})
    for label in collector.get("labels", []):
        column = label if isinstance(label, str) else label["column"]
        metrics.append({column: {"usage": "LABEL", "description": column}})
    for value in collector["values"]:
        usage = "COUNTER" if value.get("type") == "counter" else "GAUGE"
        description = value.get("help", collector["help"])
        metrics.append({value["column"]: {"usage": usage, "description": description}})
    entry = {"query": sql, "master": not per_database,
             "metrics": metrics}
    if "cache_ttl" in collector:
        entry["cache_seconds"] = duration_seconds(collector["cache_ttl"])
    return entry


def main():
    version = int(sys.argv[1]) if len(sys.argv) > 1 else 150000
    skip = set(sys.argv[2].split(",")) if len(sys.argv) > 2 else set()
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "queries")
    out = {}
    for path in sorted(glob.glob(os.path.join(root, "*.yaml"))):
        with open(path) as f:
            for collector in yaml.safe_load(f).get("collectors", []):
                entry = None if collector["name"] in skip else convert(collector, version)
                if entry is not None:
                    out[collector["name"]] = entry
    yaml.safe_dump(out, sys.stdout, sort_keys=False, width=100)


if __name__ == "__main__":
    main()
