#!/usr/bin/env python3
"""Writes deploy/prometheus/tests/pgtally_test.yaml, the promtool unit tests of the alert and
recording rules: for each alert, input series that cross its threshold (beside series that do
not), and the alert expected before and after its `for`, with its annotations rendered the way
Prometheus renders them. Review the cases below when an alert changes, then run
    python3 scripts/rule_tests.py && promtool test rules deploy/prometheus/tests/*.yaml
Needs python3-yaml.
"""
import os
import re

import yaml

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..')
alerts_doc = yaml.safe_load(open(os.path.join(ROOT, 'deploy/prometheus/pgtally-alerts.yaml')))
rules = {}
for g in alerts_doc['groups']:
    for r in g['rules']:
        rules.setdefault(r['alert'], []).append(r)

def fmt_g(v):  # Go %.4g
    s = '%.4g' % v
    return s
def humanize(v):
    if v == 0: return '0'
    if abs(v) >= 1:
        prefixes = ['', 'k', 'M', 'G', 'T', 'P', 'E', 'Z', 'Y']
        i = 0
        while abs(v) >= 1000 and i < len(prefixes)-1:
            v /= 1000; i += 1
        return fmt_g(v) + prefixes[i]
    prefixes = ['', 'm', 'u', 'n', 'p', 'f', 'a', 'z', 'y']
    i = 0
    while abs(v) < 1 and i < len(prefixes)-1:
        v *= 1000; i += 1
    return fmt_g(v) + prefixes[i]
def humanize1024(v):
    if abs(v) <= 1: return fmt_g(v)
    prefixes = ['', 'ki', 'Mi', 'Gi', 'Ti', 'Pi', 'Ei', 'Zi', 'Yi']
    i = 0
    while abs(v) >= 1024 and i < len(prefixes)-1:
        v /= 1024; i += 1
    return fmt_g(v) + prefixes[i]
def humanize_pct(v): return fmt_g(v*100) + '%'
def humanize_duration(v):
    if v == 0: return '0s'
    if abs(v) < 1:
        prefix = ''
        for p in ['m', 'u', 'n', 'p', 'f', 'a', 'z', 'y']:
            if abs(v) >= 1: break
            prefix = p; v *= 1000
        return fmt_g(v) + prefix + 's'
    if abs(v) < 60: return fmt_g(v) + 's'
    seconds = int(v); days = seconds // 86400; hours = seconds // 3600 % 24
    minutes = seconds // 60 % 60; secs = seconds % 60
    if days: return f'{days}d {hours}h {minutes}m {secs}s'
    if hours: return f'{hours}h {minutes}m {secs}s'
    return f'{minutes}m {secs}s'
def plain(v):
    return ('%d' % v) if v == int(v) else repr(v)

def render(template, labels, value):
    def sub(m):
        expr = m.group(1).strip()
        if expr.startswith('$labels.'): return labels.get(expr[8:], '')
        parts = [p.strip() for p in expr.split('|')]
        f = {'humanize': humanize, 'humanize1024': humanize1024, 'humanizePercentage': humanize_pct,
             'humanizeDuration': humanize_duration}
        return f[parts[1]](value) if len(parts) > 1 else plain(value)
    return re.sub(r'\{\{(.*?)\}\}', sub, template)

# alert -> list of (severity, series list, eval_time, value, labels of alert)
base = {'job': 'postgres', 'instance': 'db:9187'}
def sel(metric, labels):
    return metric + '{' + ', '.join(f'{k}="{v}"' for k, v in labels.items()) + '}'

tests = []
def case(alert, series, checks, interval='1m'):
    """series: list of (metric, labels, values); checks: list of (eval_time, [(severity, labels, value)])"""
    items = []
    for t, fired in checks:
        exp = []
        for severity, labels, value in fired:
            rule = [r for r in rules[alert] if r['labels']['severity'] == severity][0]
            lab = dict(labels); lab['severity'] = severity
            exp.append({'exp_labels': lab,
                        'exp_annotations': {k: render(v, lab, value) for k, v in rule['annotations'].items()}})
        items.append({'eval_time': t, 'alertname': alert, 'exp_alerts': exp})
    tests.append({'interval': interval,
                  'input_series': [{'series': sel(m, l), 'values': v} for m, l, v in series],
                  'alert_rule_test': items})

L = base
def w(**kw): d = dict(base); d.update(kw); return d
# Exporter
case('PgtallyTargetDown', [('up', w(), '1 1 0x10'), ('pgtally_build_info', w(version='0.1.0', revision='x'), '1 1'),
                           ('up', {'job': 'node', 'instance': 'n:9100'}, '0x12')],
     [('4m', []), ('8m', [('critical', w(), 0)])])
case('PgtallyCollectorFailing', [('pgtally_collector_success', w(collector='pg_locks'), '0x20'),
                                 ('pgtally_collector_success', w(collector='pg_settings'), '1x20')],
     [('10m', []), ('16m', [('warning', w(collector='pg_locks'), 0)])])
case('PgtallyConfigReloadFailed', [('pgtally_config_last_reload_successful', w(), '1 0x15'),
                                   ('pgtally_config_last_reload_successful', w(instance='other:9187'), '1x16')],
     [('8m', []), ('12m', [('warning', w(), 0)])])
case('PostgresDown', [('pg_up', w(), '1 0 0 0'), ('pg_up', w(instance='other:9187'), '1 1 1 1')],
     [('1m', []), ('3m', [('critical', w(), 0)])])
case('PgBouncerDown', [('pgbouncer_up', w(job='pgbouncer'), '1 0 0 0')],
     [('1m', []), ('3m', [('critical', w(job='pgbouncer'), 0)])])
case('PostgresConnectionsHigh', [('pg_connections_utilization_ratio', w(), '0.5 0.85x5 0.95x5'),
                                 ('pg_connections_utilization_ratio', w(instance='other:9187'), '0.5x11')],
     [('3m', []), ('6m', [('warning', w(), 0.85)]),
      ('10m', [('warning', w(), 0.95), ('critical', w(), 0.95)])])
case('PostgresIdleInTransaction', [('pg_stat_activity_oldest_idle_in_transaction_age_seconds', w(datname='shop'), '0+60x80'),
                                   ('pg_stat_activity_oldest_idle_in_transaction_age_seconds', w(datname='crm'), '30x80')],
     [('6m', []), ('8m', [('warning', w(datname='shop'), 480)]),
      ('64m', [('warning', w(datname='shop'), 3840), ('critical', w(datname='shop'), 3840)])])
case('PostgresManyIdleInTransaction',
     [('pg_stat_activity_connections', w(datname='shop', usename='app', state='idle in transaction'), '12x10'),
      ('pg_stat_activity_connections', w(datname='shop', usename='app', state='active'), '40x10'),
      ('pg_stat_activity_connections', w(datname='crm', usename='app', state='idle in transaction'), '2x10')],
     [('3m', []), ('6m', [('warning', w(datname='shop'), 12)])])
case('PostgresLongTransaction', [('pg_stat_activity_oldest_xact_age_seconds', w(datname='shop'), '3000+60x20'),
                                 ('pg_stat_activity_oldest_xact_age_seconds', w(datname='crm'), '10x20')],
     [('12m', []), ('16m', [('warning', w(datname='shop'), 3960)])])
case('PostgresLockWaitLong', [('pg_locks_max_wait_seconds', w(datname='shop'), '0 90x5'),
                              ('pg_locks_max_wait_seconds', w(datname='crm'), '5x5')],
     [('2m', []), ('4m', [('warning', w(datname='shop'), 90)])])
case('PostgresBlockedBackends', [('pg_locks_blocked_backends', w(datname='shop'), '0 8x10'),
                                 ('pg_locks_blocked_backends', w(datname='crm'), '2x10')],
     [('4m', []), ('7m', [('warning', w(datname='shop'), 8)])])
case('PostgresDeadlocks', [('pg_stat_database_deadlocks_total', w(datname='shop'), '0x5 3x10'),
                           ('pg_stat_database_deadlocks_total', w(datname='crm'), '7x15')],
     [('5m', []), ('7m', [('warning', w(datname='shop'), 3)])])
rep = w(application_name='standby1', client_addr='10.0.0.2', state='streaming', sync_state='async')
rep2 = w(application_name='standby2', client_addr='10.0.0.3', state='streaming', sync_state='async')
case('PostgresReplicationLagBytes', [('pg_stat_replication_replay_lag_bytes', rep, '0 2e9x6 2e10x6'),
                                     ('pg_stat_replication_replay_lag_bytes', rep2, '1e6x13')],
     [('3m', []), ('7m', [('warning', rep, 2e9)]), ('13m', [('warning', rep, 2e10), ('critical', rep, 2e10)])])
case('PostgresReplicationLagTime', [('pg_stat_replication_replay_lag_seconds', rep, '0 90x6 400x6'),
                                    ('pg_stat_replication_replay_lag_seconds', rep2, '1x13')],
     [('3m', []), ('7m', [('warning', rep, 90)]), ('13m', [('warning', rep, 400), ('critical', rep, 400)])])
slot = w(slot_name='old_slot', slot_type='logical', database='shop')
slot2 = w(slot_name='live_slot', slot_type='physical', database='')
case('PostgresSlotRetainingWal', [('pg_replication_slot_retained_bytes', slot, '3e9x40'),
                                  ('pg_replication_slot_active', slot, '0x40'),
                                  ('pg_replication_slot_retained_bytes', slot2, '3e9x40'),
                                  ('pg_replication_slot_active', slot2, '1x40')],
     [('20m', []), ('35m', [('warning', slot, 3e9)])])
case('PostgresArchiverFailing', [('pg_stat_archiver_failed_total', w(), '0x5 1+1x10'),
                                 ('pg_stat_archiver_failed_total', w(instance='other:9187'), '4x15')],
     [('7m', []), ('12m', [('critical', w(), 7)])])
case('PostgresArchiveStale', [('pg_stat_archiver_last_archive_age_seconds', w(), '3000+60x30'),
                              ('pg_stat_archiver_enabled', w(), '1x30'),
                              ('pg_stat_archiver_pending_wal_files', w(), '5x30'),
                              ('pg_stat_archiver_last_archive_age_seconds', w(instance='off:9187'), '9000x30'),
                              ('pg_stat_archiver_enabled', w(instance='off:9187'), '0x30'),
                              ('pg_stat_archiver_pending_wal_files', w(instance='off:9187'), '0x30')],
     [('15m', []), ('22m', [('warning', w(), 4320)])])
case('PostgresXidWraparound', [('pg_database_xid_wraparound_ratio', w(datname='shop'), '0.1 0.5x20 0.75x10'),
                               ('pg_database_xid_wraparound_ratio', w(datname='crm'), '0.01x31')],
     [('10m', []), ('17m', [('warning', w(datname='shop'), 0.5)]),
      ('28m', [('warning', w(datname='shop'), 0.75), ('critical', w(datname='shop'), 0.75)])])
case('PostgresMxidWraparound', [('pg_database_mxid_wraparound_ratio', w(datname='shop'), '0.1 0.5x20 0.75x10'),
                                ('pg_database_mxid_wraparound_ratio', w(datname='crm'), '0.01x31')],
     [('10m', []), ('17m', [('warning', w(datname='shop'), 0.5)]),
      ('28m', [('warning', w(datname='shop'), 0.75), ('critical', w(datname='shop'), 0.75)])])
case('PostgresFreezeBehind', [('pg_database_xid_age_ratio', w(datname='shop'), '2x70'),
                              ('pg_database_xid_age_ratio', w(datname='crm'), '0.9x70')],
     [('30m', []), ('65m', [('warning', w(datname='shop'), 2)])])
tbl = w(datname='shop', schemaname='public', relname='orders')
tbl2 = w(datname='shop', schemaname='public', relname='items')
case('PostgresAutovacuumOverdue', [('pg_stat_user_tables_autovacuum_vacuum_due', tbl, '1x130'),
                                   ('pg_stat_user_tables_autovacuum_vacuum_due', tbl2, '0x130')],
     [('60m', []), ('125m', [('warning', tbl, 1)])])
case('PostgresDeadTuplesHigh', [('pg_stat_user_tables_dead_tup_ratio', tbl, '0.5x40'),
                                ('pg_stat_user_tables_n_dead_tup', tbl, '50000x40'),
                                # a small table with a high ratio stays quiet
                                ('pg_stat_user_tables_dead_tup_ratio', tbl2, '0.9x40'),
                                ('pg_stat_user_tables_n_dead_tup', tbl2, '90x40')],
     [('20m', []), ('35m', [('warning', tbl, 0.5)])])
stmt = w(queryid='42', datname='shop', usename='app')
stmt2 = w(queryid='43', datname='shop', usename='app')
# Statement 42: 10 calls/s at 20 ms per call for a day, then 100 ms per call. Statement 43 stays.
case('PostgresStatementRegression',
     [('pg_stat_statements_calls_total', stmt, '0+600x1500'),
      ('pg_stat_statements_exec_seconds_total', stmt, '0+12x1440 17280+60x60'),
      ('pg_stat_statements_calls_total', stmt2, '0+600x1500'),
      ('pg_stat_statements_exec_seconds_total', stmt2, '0+12x1500')],
     [('1460m', []), ('1500m', [('warning', stmt, 0.1)])])
pool = w(job='pgbouncer', database='shop', user='app')
pool2 = w(job='pgbouncer', database='crm', user='app')
case('PgBouncerClientsWaiting', [('pgbouncer_pools_client_waiting_connections', dict(pool, pool_mode='transaction'), '0 3x10'),
                                 ('pgbouncer_pools_client_waiting_connections', dict(pool2, pool_mode='transaction'), '0x11')],
     [('4m', []), ('7m', [('warning', pool, 3)])])
case('PgBouncerMaxWaitHigh', [('pgbouncer_pools_client_maxwait_seconds', dict(pool, pool_mode='transaction'), '0 8x5'),
                              ('pgbouncer_pools_client_maxwait_seconds', dict(pool2, pool_mode='transaction'), '1x6')],
     [('1m', []), ('3m', [('critical', pool, 8)])])

# The recording rules: 10 calls/s at 20 ms per call give a 30-minute mean of 20 ms.
tests.append({'interval': '1m',
              'input_series': [{'series': sel('pg_stat_statements_calls_total', stmt), 'values': '0+600x60'},
                               {'series': sel('pg_stat_statements_exec_seconds_total', stmt), 'values': '0+12x60'},
                               {'series': sel('pg_stat_database_xact_commit_total', w(datname='shop')), 'values': '0+300x60'},
                               {'series': sel('pg_stat_database_xact_rollback_total', w(datname='shop')), 'values': '0+60x60'}],
              'promql_expr_test': [
                  {'expr': 'instance_queryid:pg_stat_statements_calls:rate30m', 'eval_time': '60m',
                   'exp_samples': [{'labels': sel('instance_queryid:pg_stat_statements_calls:rate30m', stmt), 'value': 10}]},
                  {'expr': 'instance_queryid:pg_stat_statements_mean_seconds:rate30m', 'eval_time': '60m',
                   'exp_samples': [{'labels': sel('instance_queryid:pg_stat_statements_mean_seconds:rate30m', stmt), 'value': 0.02}]},
                  {'expr': 'instance_datname:pg_stat_database_xact:rate5m', 'eval_time': '60m',
                   'exp_samples': [{'labels': sel('instance_datname:pg_stat_database_xact:rate5m', w(datname='shop')), 'value': 6}]},
              ]})
doc = {'rule_files': ['../pgtally-alerts.yaml', '../pgtally-rules.yaml'],
       'evaluation_interval': '1m', 'tests': tests}
with open(os.path.join(ROOT, 'deploy/prometheus/tests/pgtally_test.yaml'), 'w') as out:
    out.write('# promtool unit tests for pgtally-alerts.yaml and pgtally-rules.yaml: every alert fires on a matching series\n'
              '# once its `for` has passed, not before, and never for the series beside it that stays\n'
              '# under the threshold; the recording rules give the expected values. Generated by\n'
              '# scripts/rule_tests.py. Run: promtool test rules deploy/prometheus/tests/*.yaml\n')
    yaml.safe_dump(doc, out, sort_keys=False, width=100, allow_unicode=True)
print(len(tests), 'cases')
