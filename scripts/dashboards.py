#!/usr/bin/env python3
"""Writes the Grafana dashboards in grafana/ from the definitions below.

    python3 scripts/dashboards.py        (then regenerate the ConfigMaps, see README)

The JSON files are committed; this script is their source, so every dashboard follows the same
conventions (variables, data source, units, descriptions) that tests/unit/monitoring_lint_test.cpp
checks, and tests/integration/dashboards_test.cpp runs every query against a real Prometheus.
"""
import json
import os

S = 'job=~"$job", instance=~"$instance"'
SD = S + ', datname=~"$datname"'
B = 'job=~"$bouncer_job", instance=~"$bouncer"'
RI = "[$__rate_interval]"
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")


def rate(metric, selector=S):
    return f"rate({metric}{{{selector}}}{RI})"


class Board:
    def __init__(self, uid, title, description, variables):
        self.uid, self.title, self.description = uid, title, description
        self.variables = variables
        self.panels, self.next_id, self.x, self.y, self.row_height = [], 1, 0, 0, 0

    def row(self, title):
        self.y += self.row_height
        self.x, self.row_height = 0, 0
        self.panels.append({"type": "row", "id": self.next_id, "title": title, "collapsed": False,
                            "gridPos": {"h": 1, "w": 24, "x": 0, "y": self.y}, "panels": []})
        self.next_id += 1
        self.y += 1

    def add(self, kind, title, description, unit, targets, w=12, h=8, thresholds=None,
            table=False, options=None, field=None, links=None):
        if self.x + w > 24:
            self.y += self.row_height
            self.x, self.row_height = 0, 0
        ds = {"type": "prometheus", "uid": "${datasource}"}
        defaults = {"unit": unit}
        if thresholds:
            steps = [{"color": "green", "value": None}]
            for value, color in thresholds:
                if value is None:
                    steps[0]["color"] = color  # the base colour, below every threshold
                else:
                    steps.append({"color": color, "value": value})
            defaults["thresholds"] = {"mode": "absolute", "steps": steps}
            if kind == "timeseries":
                defaults["custom"] = {"thresholdsStyle": {"mode": "line"}}
        if field:
            defaults.update(field)
        panel = {
            "type": kind, "id": self.next_id, "title": title, "description": description,
            "datasource": ds,
            "gridPos": {"h": h, "w": w, "x": self.x, "y": self.y},
            "fieldConfig": {"defaults": defaults, "overrides": []},
            "options": options or {},
            "targets": [],
        }
        if links:
            panel["links"] = [{"title": text, "url": url} for text, url in links]
        for i, (expr, legend) in enumerate(targets):
            target = {"datasource": ds, "refId": chr(ord("A") + i), "expr": expr,
                      "legendFormat": legend}
            if table:
                target.update({"format": "table", "instant": True})
            else:
                target["range"] = True
            panel["targets"].append(target)
        if table:
            panel["transformations"] = [
                {"id": "merge", "options": {}},
                {"id": "organize", "options": {"excludeByName": {"Time": True, "job": False}}},
            ]
            panel["options"] = {"showHeader": True, "footer": {"show": False}}
        self.panels.append(panel)
        self.next_id += 1
        self.x += w
        self.row_height = max(self.row_height, h)

    def ts(self, title, description, unit, *targets, **kw):
        self.add("timeseries", title, description, unit, list(targets), **kw)

    def table(self, title, description, unit, *targets, **kw):
        self.add("table", title, description, unit, list(targets), table=True, **kw)

    def stat(self, title, description, unit, *targets, w=4, h=4, **kw):
        self.add("stat", title, description, unit, list(targets), w=w, h=h, **kw)

    def gauge(self, title, description, unit, *targets, w=6, h=8, **kw):
        kw.setdefault("field", {"min": 0, "max": 1})
        self.add("gauge", title, description, unit, list(targets), w=w, h=h, **kw)

    def json(self):
        return {
            "id": None, "uid": self.uid, "title": self.title, "description": self.description,
            "tags": ["pgtally", "postgresql"], "editable": True, "graphTooltip": 1,
            "schemaVersion": 38, "time": {"from": "now-3h", "to": "now"}, "refresh": "30s",
            "timezone": "", "fiscalYearStartMonth": 0, "liveNow": False, "weekStart": "",
            "links": [{"type": "dashboards", "tags": ["pgtally"], "title": "pgtally",
                       "asDropdown": False, "includeVars": True, "keepTime": True,
                       "targetBlank": False, "icon": "external link"}],
            "annotations": {"list": []},
            "templating": {"list": self.variables},
            "panels": self.panels,
        }


def query_var(name, label, query, multi=True):
    return {
        "name": name, "label": label, "type": "query",
        "datasource": {"type": "prometheus", "uid": "${datasource}"},
        "definition": query,
        "query": {"query": query, "refId": "PrometheusVariableQueryEditor-VariableQuery"},
        "refresh": 2, "sort": 1, "multi": multi, "includeAll": True, "allValue": ".+",
        "current": {}, "hide": 0, "options": [], "regex": "",
    }


DATASOURCE = {"name": "datasource", "label": "Data source", "type": "datasource",
              "query": "prometheus", "current": {}, "hide": 0, "refresh": 1, "regex": "",
              "options": []}
JOB = query_var("job", "Job", "label_values(pg_up, job)")
INSTANCE = query_var("instance", "Instance", 'label_values(pg_up{job=~"$job"}, instance)')
DATNAME = query_var("datname", "Database",
                    'label_values(pg_database_size_bytes{job=~"$job", instance=~"$instance"}, datname)')
TOPK = {"name": "topk", "label": "Top", "type": "custom", "query": "10,20,50",
        "current": {"text": "10", "value": "10"}, "hide": 0, "multi": False, "includeAll": False,
        "options": [{"text": v, "value": v, "selected": v == "10"} for v in ("10", "20", "50")]}
BOUNCER_JOB = query_var("bouncer_job", "PgBouncer job", "label_values(pgbouncer_up, job)")
BOUNCER = query_var("bouncer", "PgBouncer", 'label_values(pgbouncer_up{job=~"$bouncer_job"}, instance)')

STMT = "queryid, datname, usename"
TEXT = f'max by ({STMT}, query) (pg_stat_statements_query_info{{{SD}}})'


def with_text(expr):
    """Joins the statement text (the info metric) onto a per-statement expression."""
    return f"({expr}) * on ({STMT}) group_left(query) {TEXT}"


def per_statement(metric):
    return f"sum by ({STMT}) ({rate(metric, SD)})"


def mean_latency():
    return (f"{per_statement('pg_stat_statements_exec_seconds_total')} / "
            f"{per_statement('pg_stat_statements_calls_total')} > 0")


def slow_queries():
    b = Board("pgtally-slow-queries", "pgtally / Slow queries",
              "Statements from pg_stat_statements: where the time goes, which statements got "
              "slower, and whether pg_stat_statements itself keeps up.",
              [DATASOURCE, JOB, INSTANCE, DATNAME, TOPK])
    b.row("Top statements (over the selected rate interval)")
    rank = ("Per statement (queryid, database, user), with its normalised text. Only the top "
            "statements_limit statements by total time are exported.")
    b.table("Top by total execution time", rank + " A statement using most of the time is "
            "where tuning pays most: check its plan (EXPLAIN ANALYZE) and indexes.", "s",
            (with_text(f"topk($topk, {per_statement('pg_stat_statements_exec_seconds_total')})"), ""),
            w=24)
    b.table("Top by mean latency", rank + " Mean time per call, computed from the counters. A "
            "high mean on a frequent statement hurts users: look for sequential scans or lock waits.",
            "s", (with_text(f"topk($topk, {mean_latency()})"), ""), w=24)
    b.table("Top by calls", rank + " Very high call rates often mean an N+1 pattern in the "
            "application; batch or cache them.", "ops",
            (with_text(f"topk($topk, {per_statement('pg_stat_statements_calls_total')})"), ""))
    b.table("Top by rows", rank + " Statements returning or touching many rows per second; a "
            "sudden rise can mean a missing WHERE clause or LIMIT.", "short",
            (with_text(f"topk($topk, {per_statement('pg_stat_statements_rows_total')})"), ""))
    b.table("Top by temp blocks written", rank + " Temp blocks mean sorts or hashes spilling "
            "to disk: raise work_mem for that statement or add an index that avoids the sort.",
            "short",
            (with_text(f"topk($topk, {per_statement('pg_stat_statements_temp_blks_written_total')})"), ""))
    b.table("Top by shared blocks read", rank + " Blocks read from outside shared_buffers: "
            "high values mean the working set does not fit in memory or a scan is too wide.",
            "short",
            (with_text(f"topk($topk, {per_statement('pg_stat_statements_shared_blks_read_total')})"), ""))

    b.row("Per-statement latency from counters")
    b.ts("Mean latency per statement", "rate(execution seconds) / rate(calls) per statement, the "
         "true mean over each interval (not the lifetime average pg_stat_statements reports). A "
         "step up is a plan change or contention: compare with the previous day.", "s",
         (f"topk($topk, {mean_latency()})", "{{datname}} {{usename}} {{queryid}}"), w=12)
    b.ts("Latency variability per statement", "Standard deviation over 30 minutes of each "
         "statement's interval mean latency. High variability means the statement is sometimes "
         "fast and sometimes slow: look for lock waits, cache misses or parameter-dependent plans.",
         "s", (f"topk($topk, stddev_over_time(({mean_latency()})[30m:]))",
               "{{datname}} {{usename}} {{queryid}}"), w=12)
    b.ts("Statement throughput", "Calls per second over all exported statements, per database. "
         "A drop with steady application traffic means queries are stuck or the application is "
         "failing.", "ops",
         (f"sum by (datname) ({rate('pg_stat_statements_calls_total', SD)})", "{{datname}}"), w=8)
    b.ts("Mean latency, all statements", "Execution time per call over all exported statements, "
         "per database. A rise means the whole workload got slower: check CPU, I/O and locks.",
         "s", (f"sum by (datname) ({rate('pg_stat_statements_exec_seconds_total', SD)}) / "
               f"sum by (datname) ({rate('pg_stat_statements_calls_total', SD)})", "{{datname}}"),
         w=8)
    b.ts("Execution and planning time", "Seconds of execution and of planning spent per second "
         "(1 = one backend busy all the time). Planning is only tracked with "
         "pg_stat_statements.track_planning = on; high planning time suggests prepared statements.",
         "s", (f"sum by (datname) ({rate('pg_stat_statements_exec_seconds_total', SD)})",
               "execute {{datname}}"),
         (f"sum by (datname) ({rate('pg_stat_statements_plan_seconds_total', SD)})",
          "plan {{datname}}"), w=8)
    b.ts("Block I/O time", "Seconds per second spent reading and writing blocks (needs "
         "track_io_timing = on; 0 otherwise). High values mean the statements wait on storage.",
         "s", (f"sum by (datname) ({rate('pg_stat_statements_block_read_seconds_total', SD)})",
               "read {{datname}}"),
         (f"sum by (datname) ({rate('pg_stat_statements_block_write_seconds_total', SD)})",
          "write {{datname}}"), w=12)
    b.ts("Temp blocks written", "Temp blocks written per second by all statements: sorts and "
         "hashes that did not fit in work_mem. Sustained values warrant a larger work_mem or "
         "better indexes.", "short",
         (f"sum by (datname) ({rate('pg_stat_statements_temp_blks_written_total', SD)})",
          "{{datname}}"), w=12)

    b.row("pg_stat_statements itself")
    b.stat("Entries used", "Statements tracked as a share of pg_stat_statements.max. Near 100% "
           "the extension evicts statements and the numbers above lose history: raise "
           "pg_stat_statements.max.", "percentunit",
           (f"pg_stat_statements_info_entries{{{S}}} / pg_stat_statements_info_max_entries{{{S}}}",
            "{{instance}}"), thresholds=[(0.8, "orange"), (0.95, "red")], w=6)
    b.ts("Deallocations", "Statements evicted per second because pg_stat_statements.max was "
         "reached. Anything above zero means statistics are being lost: raise the limit.", "ops",
         (rate("pg_stat_statements_info_dealloc_total"), "{{instance}}"), w=6, h=4,
         thresholds=[(0.001, "red")])
    b.stat("Since stats reset", "Time since pg_stat_statements_reset(). A recent reset explains "
           "counters starting from zero.", "s",
           (f"time() - pg_stat_statements_info_stats_reset_timestamp_seconds{{{S}}}",
            "{{instance}}"), w=6)
    b.stat("Statements beyond the limit", "Statements pgtally did not export because of "
           "statements_limit. Their time is not in the panels above; raise the parameter if the "
           "top statements do not cover most of the time.", "short",
           (f'pgtally_collector_rows_omitted{{{S}, collector="pg_stat_statements"}}',
            "{{instance}}"), w=6)
    return b


def connections():
    b = Board("pgtally-connections", "pgtally / Connections",
              "Connection pressure: who is connected, how close to max_connections, long "
              "transactions, lock waits and PgBouncer pools.",
              [DATASOURCE, JOB, INSTANCE, DATNAME, BOUNCER_JOB, BOUNCER])
    b.row("Connections")
    conns = f"pg_stat_activity_connections{{{SD}}}"
    b.gauge("Connection utilisation", "Client backends against max_connections minus the "
            "reserved slots. At 100% ordinary roles are refused: find idle sessions, add a "
            "pooler (PgBouncer) or raise max_connections.", "percentunit",
            (f"pg_connections_utilization_ratio{{{S}}}", "{{instance}}"),
            thresholds=[(0.8, "orange"), (0.9, "red")])
    b.ts("Connections by state", "Client backends by state. Many 'idle in transaction' hold "
         "locks and snapshots; many 'active' with little throughput means waiting.", "short",
         (f"sum by (state) ({conns})", "{{state}}"), w=18)
    b.ts("Connections by database", "Client backends per database. A database near its own "
         "connection limit refuses new sessions.", "short",
         (f"sum by (datname) ({conns})", "{{datname}}"), w=8)
    b.ts("Connections by user", "Client backends per role. One role growing without bound "
         "usually means a connection leak in that application.", "short",
         (f"sum by (usename) ({conns})", "{{usename}}"), w=8)
    b.ts("Connections by application", "Client backends per application_name (the top "
         "application_limit names). Tag your applications with application_name to see them.",
         "short", (f"sum by (application_name) (pg_stat_activity_application_connections{{{SD}}})",
                   "{{application_name}}"), w=8)
    b.ts("Backends by type", "All server processes by type (client, autovacuum, walsender, "
         "background workers). Unexpected growth of one type deserves a look.", "short",
         (f"pg_stat_activity_backends{{{S}}}", "{{backend_type}}"), w=12)
    b.stat("max_connections", "The server's max_connections and reserved superuser slots. "
           "Changing them needs a restart.", "short",
           (f"pg_settings_max_connections{{{S}}}", "max {{instance}}"),
           (f"pg_settings_superuser_reserved_connections{{{S}}}", "reserved {{instance}}"),
           w=12, h=8)

    b.row("Transactions")
    b.ts("Oldest transaction age", "Age of the oldest open transaction per database. Long "
         "transactions hold back vacuum (dead tuples pile up) and can block DDL: find the session "
         "in pg_stat_activity and end it.", "s",
         (f"pg_stat_activity_oldest_xact_age_seconds{{{SD}}}", "{{datname}}"),
         thresholds=[(300, "orange"), (3600, "red")], w=8)
    b.ts("Oldest idle-in-transaction age", "How long the oldest session has sat idle inside a "
         "transaction. Such sessions hold locks and snapshots: fix the application or set "
         "idle_in_transaction_session_timeout.", "s",
         (f"pg_stat_activity_oldest_idle_in_transaction_age_seconds{{{SD}}}", "{{datname}}"),
         thresholds=[(60, "orange"), (600, "red")], w=8)
    b.ts("Oldest running query age", "Age of the longest-running active query. Runaway queries "
         "use resources and may hold locks: consider statement_timeout.", "s",
         (f"pg_stat_activity_oldest_query_age_seconds{{{SD}}}", "{{datname}}"), w=8)
    b.ts("Idle-in-transaction sessions", "Sessions idle inside an open transaction, per "
         "database. More than a handful means the application forgets to commit.", "short",
         (f'sum by (datname) (pg_stat_activity_connections{{{SD}, state="idle in transaction"}})',
          "{{datname}}"), w=12)
    b.ts("Prepared transactions", "Two-phase transactions prepared but not committed, and the "
         "age of the oldest. Forgotten prepared transactions block vacuum forever: COMMIT "
         "PREPARED or ROLLBACK PREPARED them.", "short",
         (f"pg_prepared_xacts_transactions{{{SD}}}", "{{datname}}"), w=12)

    b.row("Locks and waits")
    b.ts("Backends waiting on locks", "Backends blocked on a lock, and the backends blocking "
         "them. Sustained waits point to long transactions or DDL: look at the blockers first.",
         "short", (f"pg_locks_blocked_backends{{{SD}}}", "blocked {{datname}}"),
         (f"pg_locks_blocking_backends{{{SD}}}", "blocking {{datname}}"), w=8)
    b.ts("Longest lock wait", "How long the longest current lock wait has lasted. Waits above "
         "lock_timeout in the application mean errors for users.", "s",
         (f"pg_locks_max_wait_seconds{{{SD}}}", "{{datname}}"),
         thresholds=[(30, "orange"), (300, "red")], w=8)
    b.ts("Lock waits by mode", "Ungranted locks by mode and lock type. AccessExclusiveLock "
         "waits usually come from DDL queued behind a long transaction.", "short",
         (f"sum by (mode, locktype) (pg_locks_waiting{{{SD}}})", "{{mode}} {{locktype}}"), w=8)
    b.ts("Active backends by wait event type", "What active backends wait on: Lock, LWLock, IO, "
         "Client, IPC... ('' is running on CPU). A growing Lock or LWLock share means contention.",
         "short", (f"sum by (wait_event_type) (pg_stat_activity_wait_event_backends{{{SD}}})",
                   "{{wait_event_type}}"), w=12)
    b.ts("Deadlocks", "Deadlocks detected per second. Any is a bug in lock ordering in the "
         "application: the server log names the statements.", "ops",
         (f"sum by (datname) ({rate('pg_stat_database_deadlocks_total', SD)})", "{{datname}}"),
         w=12)

    b.row("PgBouncer (empty without a PgBouncer target)")
    pools = "database, user"
    b.ts("Clients waiting for a server connection", "PgBouncer clients queued for a server "
         "connection, per pool. Sustained waiting means the pool is too small or server "
         "connections are held too long.", "short",
         (f"sum by ({pools}) (pgbouncer_pools_client_waiting_connections{{{B}}})",
          "{{database}} {{user}}"), thresholds=[(1, "orange")], w=8)
    b.ts("Longest client wait", "How long the oldest waiting client has waited (whole seconds). "
         "Above a second, users feel it: raise default_pool_size or find slow transactions.", "s",
         (f"max by ({pools}) (pgbouncer_pools_client_maxwait_seconds{{{B}}})",
          "{{database}} {{user}}"), thresholds=[(1, "orange"), (5, "red")], w=8)
    b.ts("Active clients", "Clients linked to a server connection or idle, per pool.", "short",
         (f"sum by ({pools}) (pgbouncer_pools_client_active_connections{{{B}}})",
          "{{database}} {{user}}"), w=8)
    b.ts("Server connections", "Server connections by state: active (linked to a client), "
         "idle (ready) and used. No idle servers while clients wait means the pool is exhausted.",
         "short",
         (f"sum by (database) (pgbouncer_pools_server_active_connections{{{B}}})",
          "active {{database}}"),
         (f"sum by (database) (pgbouncer_pools_server_idle_connections{{{B}}})",
          "idle {{database}}"), w=8)
    b.ts("Server pool utilisation", "Active server connections as a share of the pool size, "
         "per database. At 100% new transactions queue.", "percentunit",
         (f"sum by (database) (pgbouncer_pools_server_active_connections{{{B}}}) / on (database) "
          f'max by (database) (label_replace(pgbouncer_databases_pool_size{{{B}}}, "database", '
          f'"$1", "name", "(.*)"))', "{{database}}"),
         thresholds=[(0.8, "orange"), (1, "red")], w=8)
    b.ts("Transactions and client wait", "Transactions per second through PgBouncer, and the "
         "seconds clients spent waiting per second. Wait time growing faster than traffic means "
         "the pool is the bottleneck.", "ops",
         (f"sum by (database) ({rate('pgbouncer_stats_transactions_total', B)})",
          "transactions {{database}}"),
         (f"sum by (database) ({rate('pgbouncer_stats_client_wait_time_seconds_total', B)})",
          "wait s/s {{database}}"), w=8)
    return b


def vacuum():
    b = Board("pgtally-vacuum", "pgtally / Vacuum health",
              "Dead tuples, autovacuum progress and backlog, transaction ID wraparound and "
              "bloat: the vacuum health of each database.",
              [DATASOURCE, JOB, INSTANCE, DATNAME, TOPK])
    t = f"{{{SD}}}"
    b.row("Running vacuums (empty when no VACUUM runs)")
    b.table("Running vacuums", "Every running VACUUM (manual or autovacuum) with its phase and "
            "how much of the heap it has scanned. A vacuum stuck in one phase for hours usually "
            "waits on a lock or is throttled by cost delay.", "percentunit",
            (f"pg_stat_progress_vacuum_heap_scanned_ratio{t}", ""), w=24, h=6)
    b.ts("Vacuum progress", "Share of the heap scanned by each running vacuum over time. A flat "
         "line means the vacuum is not advancing.", "percentunit",
         (f"pg_stat_progress_vacuum_heap_scanned_ratio{t}",
          "{{datname}} {{relname}} ({{phase}}, {{started_by}})"), w=8, field={"min": 0, "max": 1})
    b.ts("Vacuum running for", "How long each running vacuum has been going. Multi-hour "
         "vacuums on big tables are normal; on small ones they mean throttling or lock waits.",
         "s", (f"pg_stat_progress_vacuum_running_seconds{t}", "{{datname}} {{relname}}"), w=8)
    b.ts("Index vacuum cycles", "Index passes of each running vacuum. More than one means "
         "maintenance_work_mem (or autovacuum_work_mem) was too small to hold the dead tuples.",
         "short", (f"pg_stat_progress_vacuum_index_vacuum_cycles{t}", "{{datname}} {{relname}}"),
         w=8)

    b.row("Autovacuum")
    b.gauge("Autovacuum workers busy", "Running autovacuum workers against "
            "autovacuum_max_workers. Always full means autovacuum cannot keep up: raise the "
            "workers or the cost limit.", "percentunit",
            (f"pg_autovacuum_workers_busy_ratio{{{S}}}", "{{instance}}"),
            thresholds=[(0.8, "orange"), (1, "red")])
    b.ts("Autovacuum workers", "Workers running (and those preventing wraparound) against the "
         "maximum.", "short", (f"pg_autovacuum_workers_busy{{{S}}}", "busy"),
         (f"pg_autovacuum_workers_wraparound{{{S}}}", "anti-wraparound"),
         (f"pg_settings_autovacuum_max_workers{{{S}}}", "max"), w=9)
    b.ts("Tables due for autovacuum", "Tables past PostgreSQL's own vacuum and analyze "
         "thresholds (reloptions honoured), per database. Tables that stay due mean autovacuum is "
         "behind, disabled on them, or blocked by long transactions.", "short",
         (f"sum by (datname) (pg_stat_user_tables_autovacuum_vacuum_due{t})", "vacuum {{datname}}"),
         (f"sum by (datname) (pg_stat_user_tables_autovacuum_analyze_due{t})",
          "analyze {{datname}}"), w=9)
    b.table("Tables due for vacuum", "Tables past the autovacuum vacuum threshold now, with their "
            "dead tuples. If one stays here, check autovacuum_enabled in its reloptions and "
            "blockers of vacuum (long transactions, replication slots).", "short",
            (f"pg_stat_user_tables_n_dead_tup{t} and on (job, instance, datname, schemaname, relname) "
             f"(pg_stat_user_tables_autovacuum_vacuum_due{t} == 1)", ""), w=12)
    b.table("Longest since autovacuum", "Tables whose last autovacuum is longest ago. Very old "
            "values on busy tables mean autovacuum never gets to them.", "s",
            (f"topk($topk, pg_stat_user_tables_last_autovacuum_age_seconds{t})", ""), w=12)
    b.table("Longest since vacuum", "Tables whose last manual VACUUM is longest ago "
            "(tables never vacuumed by hand are absent).", "s",
            (f"topk($topk, pg_stat_user_tables_last_vacuum_age_seconds{t})", ""), w=12)
    b.table("Longest since analyze", "Tables whose statistics are oldest (manual or automatic "
            "ANALYZE). Stale statistics lead to bad plans: ANALYZE them.", "s",
            (f"topk($topk, pg_stat_user_tables_last_analyze_age_seconds{t})", ""), w=12)

    b.row("Dead tuples")
    b.table("Most dead tuples", "Tables with the most dead tuples. Dead tuples waste space and "
            "slow scans until vacuum removes them.", "short",
            (f"topk($topk, pg_stat_user_tables_n_dead_tup{t})", ""), w=8)
    b.table("Highest dead-tuple ratio", "Dead tuples as a share of all tuples. Above about 20% "
            "on a large table, autovacuum is behind: lower autovacuum_vacuum_scale_factor for it.",
            "percentunit", (f"topk($topk, pg_stat_user_tables_dead_tup_ratio{t})", ""),
            thresholds=[(0.2, "orange"), (0.5, "red")], w=8)
    b.table("Modified since analyze", "Rows changed since the last analyze. Large numbers mean "
            "statistics drift from the data.", "short",
            (f"topk($topk, pg_stat_user_tables_n_mod_since_analyze{t})", ""), w=8)
    b.ts("Dead tuples over time", "Dead tuples of the tables with most of them. A saw-tooth is "
         "healthy (vacuum cleans up); a steady climb is not.", "short",
         (f"topk($topk, pg_stat_user_tables_n_dead_tup{t})", "{{datname}} {{relname}}"), w=24)

    b.row("Transaction ID wraparound")
    b.gauge("XID age / freeze max age", "age(datfrozenxid) against autovacuum_freeze_max_age. "
            "At 100% autovacuum forces anti-wraparound vacuums; far above it, freezing is "
            "blocked (long transactions, stale slots, prepared transactions).", "percentunit",
            (f"max by (datname) (pg_database_xid_age_ratio{t})", "{{datname}}"),
            thresholds=[(0.8, "orange"), (1.5, "red")], field={"min": 0, "max": 2}, w=8)
    b.gauge("XID space used", "age(datfrozenxid) as a share of the 2^31 transaction IDs. Near "
            "100% PostgreSQL stops accepting writes to prevent wraparound.", "percentunit",
            (f"max by (datname) (pg_database_xid_wraparound_ratio{t})", "{{datname}}"),
            thresholds=[(0.5, "orange"), (0.75, "red")], w=8)
    b.gauge("Multixact space used", "mxid_age(datminmxid) as a share of the 2^31 multixact IDs; "
            "same stakes as transaction IDs.", "percentunit",
            (f"max by (datname) (pg_database_mxid_wraparound_ratio{t})", "{{datname}}"),
            thresholds=[(0.5, "orange"), (0.75, "red")], w=8)
    b.ts("Time to XID exhaustion (estimate)", "Transaction IDs left before the server stops "
         "writes (2^31 minus a 3 million safety margin) divided by how fast the database's "
         "xid age grows (over the last hour). Days or less: find what blocks freezing and "
         "VACUUM (FREEZE) the oldest tables now. Shown as 10 years when the age is not growing.",
         "s", (f"clamp_max((2147483648 - 3000000 - pg_database_xid_age{t}) / "
               f"clamp_min(deriv(pg_database_xid_age{t}[1h]), 0.0000001), 315360000)",
               "{{datname}}"),
         thresholds=[(None, "red"), (86400 * 7, "orange"), (86400 * 30, "green")], w=12)
    b.ts("Transaction ID age", "age(datfrozenxid) per database against "
         "autovacuum_freeze_max_age (dashed threshold).", "short",
         (f"pg_database_xid_age{t}", "{{datname}}"),
         (f"pg_settings_autovacuum_freeze_max_age{{{S}}}", "autovacuum_freeze_max_age"), w=12)
    b.table("Oldest unfrozen table per database", "The table holding back each database's "
            "datfrozenxid. VACUUM (FREEZE) it to let the database's age drop.", "short",
            (f"pg_database_oldest_table_xid_age{t}", ""), w=24, h=6)

    b.row("Bloat and size")
    b.table("Table bloat estimate", "Estimated wasted space per table (statistics-based, like "
            "the well-known check_postgres query; tables under 1 MiB left out). Large bloat that "
            "vacuum does not reclaim needs pg_repack or VACUUM FULL.", "bytes",
            (f"topk($topk, pg_table_bloat_bytes{t})", ""), w=12)
    b.table("Index bloat estimate", "Estimated wasted space per B-tree index. REINDEX "
            "CONCURRENTLY reclaims it.", "bytes",
            (f"topk($topk, pg_index_bloat_bytes{t})", ""), w=12)
    b.table("Largest tables", "Heap, TOAST and index sizes of the largest tables (cached for "
            "minutes: sizes are expensive on big catalogs).", "bytes",
            (f"topk($topk, pg_table_size_bytes{t})", ""), w=24)
    return b


def overview():
    b = Board("pgtally-overview", "pgtally / Overview",
              "PostgreSQL at a glance: availability, throughput, sizes, replication, archiving "
              "and the health of pgtally's own collectors. Links lead to the detailed dashboards.",
              [DATASOURCE, JOB, INSTANCE, DATNAME])
    t = f"{{{SD}}}"
    b.row("Status")
    b.stat("Up", "1 when pgtally could connect and query the server in its last scrape. 0 means "
           "the database is down or unreachable from the exporter: check the server and pgtally's "
           "log.", "none", (f"pg_up{{{S}}}", "{{instance}}"),
           thresholds=[(None, "red"), (1, "green")])
    b.stat("Version", "Server version. Plan upgrades before the major version leaves support.",
           "none", (f"pg_version_info{{{S}}}", "{{version}}"),
           options={"textMode": "name", "reduceOptions": {"calcs": ["lastNotNull"]}})
    b.stat("Uptime", "Time since the postmaster started. A recent restart you did not plan means "
           "a crash: read the server log.", "s", (f"pg_postmaster_uptime_seconds{{{S}}}", "{{instance}}"))
    b.stat("Role", "1 on a standby (in recovery), 0 on a primary. A change you did not plan is "
           "a failover.", "none", (f"pg_in_recovery{{{S}}}", "{{instance}}"))
    b.stat("Connection utilisation", "Client connections against the usable max_connections; "
           "see the Connections dashboard when it is high.", "percentunit",
           (f"pg_connections_utilization_ratio{{{S}}}", "{{instance}}"),
           thresholds=[(0.8, "orange"), (0.9, "red")],
           links=[("Connections", "/d/pgtally-connections?${__url_time_range}&${__all_variables}")])
    b.stat("XID space used (max)", "The highest share of the transaction ID space used by any "
           "database; see the Vacuum health dashboard when it climbs.", "percentunit",
           (f"max(pg_database_xid_wraparound_ratio{t})", "max"),
           thresholds=[(0.5, "orange"), (0.75, "red")],
           links=[("Vacuum health", "/d/pgtally-vacuum?${__url_time_range}&${__all_variables}")])

    b.row("Throughput")
    b.ts("Transactions per second", "Commits plus rollbacks per second per database. A drop "
         "with unchanged traffic means something is stuck; many rollbacks mean errors.", "ops",
         (f"sum by (datname) ({rate('pg_stat_database_xact_commit_total', SD)})", "commit {{datname}}"),
         (f"sum by (datname) ({rate('pg_stat_database_xact_rollback_total', SD)})",
          "rollback {{datname}}"), w=8,
         links=[("Slow queries", "/d/pgtally-slow-queries?${__url_time_range}&${__all_variables}")])
    b.ts("Cache hit ratio", "Share of block reads served from shared_buffers. Below about 90% on "
         "an OLTP database, the working set does not fit in memory.", "percentunit",
         (f"sum by (datname) ({rate('pg_stat_database_blks_hit_total', SD)}) / "
          f"(sum by (datname) ({rate('pg_stat_database_blks_hit_total', SD)}) + "
          f"sum by (datname) ({rate('pg_stat_database_blks_read_total', SD)}))", "{{datname}}"),
         thresholds=[(None, "red"), (0.9, "orange"), (0.99, "green")], w=8,
         field={"min": 0, "max": 1})
    b.ts("Database size", "Size of each database. Sudden growth is bloat or a runaway job; plan "
         "disk ahead of the trend.", "bytes", (f"pg_database_size_bytes{t}", "{{datname}}"), w=8)
    b.ts("Deadlocks and conflicts", "Deadlocks and recovery conflicts per second. Any deadlock "
         "is an application lock-ordering bug; conflicts cancel queries on standbys.", "ops",
         (f"sum by (datname) ({rate('pg_stat_database_deadlocks_total', SD)})", "deadlocks {{datname}}"),
         (f"sum by (datname) ({rate('pg_stat_database_conflicts_total', SD)})",
          "conflicts {{datname}}"), w=8)
    b.ts("Temp files written", "Bytes of temporary files per second: sorts and hashes that "
         "spilled to disk. Raise work_mem for the statements responsible.", "Bps",
         (f"sum by (datname) ({rate('pg_stat_database_temp_bytes_total', SD)})", "{{datname}}"), w=8)
    b.ts("WAL generated", "WAL bytes written per second. It drives replication, archiving and "
         "backup volume; spikes come from bulk writes or full-page images after checkpoints.",
         "Bps", (rate("pg_stat_wal_bytes_total"), "{{instance}}"), w=8)
    b.ts("Checkpoints", "Timed and requested checkpoints per second. Requested ones mean "
         "max_wal_size is too small for the write load.", "ops",
         (rate("pg_checkpoints_timed_total"), "timed {{instance}}"),
         (rate("pg_checkpoints_requested_total"), "requested {{instance}}"), w=12)
    b.ts("Sessions", "New sessions per second and those that ended abnormally (fatal, killed, "
         "abandoned). Many new sessions per second call for a connection pooler.", "ops",
         (f"sum by (datname) ({rate('pg_stat_database_sessions_total', SD)})", "new {{datname}}"),
         (f"sum by (datname) ({rate('pg_stat_database_sessions_abandoned_total', SD)})",
          "abandoned {{datname}}"), w=12)

    b.row("Replication and archiving")
    b.ts("Replication lag (bytes)", "On the primary: WAL each standby has not yet replayed. "
         "Growing lag means the standby or its network cannot keep up. Empty without standbys.",
         "bytes", (f"pg_stat_replication_replay_lag_bytes{{{S}}}",
                   "{{instance}} → {{application_name}} {{client_addr}}"), w=8)
    b.ts("Replication lag (time)", "PostgreSQL's own measure of how long recent WAL took to be "
         "replayed on each standby; it stays correct when the primary is idle (no sample then). "
         "Empty without standbys.", "s",
         (f"pg_stat_replication_replay_lag_seconds{{{S}}}",
          "{{instance}} → {{application_name}}"), w=8)
    b.ts("Standby replay lag", "On a standby: WAL received but not yet replayed. Growing lag "
         "means replay is slow or paused (conflicts, I/O). Empty on a primary.", "bytes",
         (f"pg_wal_replay_lag_bytes{{{S}}}", "{{instance}}"), w=8)
    b.ts("WAL retained by replication slots", "WAL each slot keeps from being removed. An "
         "inactive slot retaining WAL will fill the disk: drop it or reconnect its consumer.",
         "bytes", (f"pg_replication_slot_retained_bytes{{{S}}}", "{{slot_name}} ({{slot_type}})"),
         w=8)
    b.ts("Archiver", "WAL files archived and archive failures per second. Failures mean "
         "archive_command is broken: backups and point-in-time recovery are at risk.", "ops",
         (rate("pg_stat_archiver_archived_total"), "archived {{instance}}"),
         (rate("pg_stat_archiver_failed_total"), "failed {{instance}}"), w=8)
    b.ts("Since last archived WAL", "Seconds since the archiver last succeeded. With archiving "
         "on and writes happening, growing values mean archiving has stalled. Empty when "
         "nothing was archived yet.", "s",
         (f"pg_stat_archiver_last_archive_age_seconds{{{S}}}", "{{instance}}"),
         (f"pg_stat_archiver_pending_wal_files{{{S}}}", "pending files {{instance}}"), w=8)

    b.row("pgtally")
    b.table("Collector status", "1 when a collector succeeded in the last scrape, 0 when it "
            "failed (the pgtally log says why). Skipped collectors (wrong version, role or "
            "missing extension) are listed separately.", "none",
            (f"pgtally_collector_success{{{S}}}", ""), w=8, h=10,
            thresholds=[(None, "red"), (1, "green")])
    b.ts("Collector errors", "Collector failures per second by class (timeout, sql, connection, "
         "mapping). Timeouts mean a slow catalog or a short scrape_timeout.", "ops",
         (f"topk(10, sum by (collector, class) ({rate('pgtally_collector_errors_total')}))",
          "{{collector}} {{class}}"),
         w=8, h=10)
    b.ts("Scrape duration", "Time pgtally's scrape took, and the slowest collectors. Close to "
         "the scrape timeout means data will be missing: cache or disable the slow ones.", "s",
         (f"pgtally_scrape_duration_seconds{{{S}}}", "scrape {{instance}}"),
         (f"topk(5, pgtally_collector_duration_seconds{{{S}}})", "{{collector}}"), w=8, h=10)
    b.table("Skipped collectors", "Collectors that did not run, with the reason: version "
            "(not for this server version), role (primary-only or standby-only) or unavailable "
            "(an extension or privilege is missing).", "none",
            (f"pgtally_collector_skipped{{{S}}}", ""), w=12)
    b.table("Rows left out by limits", "Rows collectors left out under their limit parameters "
            "(e.g. tables beyond table_limit). Raise the limit if the panels miss objects you "
            "care about.", "short", (f"pgtally_collector_rows_omitted{{{S}}}", ""), w=12)
    return b


def main():
    for board in (overview(), slow_queries(), connections(), vacuum()):
        path = os.path.join(ROOT, "grafana", board.uid + ".json")
        with open(path, "w") as out:
            json.dump(board.json(), out, indent=2)
            out.write("\n")
        print(f"wrote {path}: {len(board.panels)} panels")


if __name__ == "__main__":
    main()
