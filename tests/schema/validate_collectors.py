#!/usr/bin/env python3
"""Validates collector files against docs/collector.schema.json, the schema editors use.

Usage: validate_collectors.py SCHEMA [FILE.yaml ...] [--convert PGTALLY FOREIGN.yaml ...]
                              [--markdown DOC.md ...]

Every FILE must be valid. With --convert, each FOREIGN file (another exporter's, such as
postgres_exporter's queries.yaml) is converted with `PGTALLY convert FOREIGN` and the output must
be valid: what pgtally writes, the schema must accept. From each DOC.md, every ```yaml block that
is a whole collector file (a map with "collectors") must be valid too. Then variants of a small
file using every feature must be valid, and a set of deliberately broken documents must each be
rejected, so a schema that accepts anything cannot pass. The loader (`pgtally check`) stays the
authority; this keeps the schema from rejecting what pgtally ships or documents, and from
accepting the mistakes it exists to flag. Exits 1 on any failure.

Needs only Debian 12's python3-jsonschema (4.10) and python3-yaml.
"""

import copy
import json
import re
import subprocess
import sys

try:
    import jsonschema
    import yaml
except ImportError as error:
    sys.exit(f"{error}: install python3-jsonschema and python3-yaml (scripts/install-deps.sh)")

# A small valid file; each broken case below changes one thing in a copy of it.
BASE = {
    "version": 1,
    "collectors": [
        {
            "name": "app_queue",
            "help": "Jobs in the queue.",
            "scope": "database",
            "timeout": "2s",
            "query": "SELECT queue, count(*) AS jobs FROM jobs GROUP BY queue",
            "labels": ["queue", {"column": "state", "name": "job_state"}],
            "values": [
                {"column": "jobs", "type": "gauge"},
                {"column": "done", "type": "counter", "name": "app_jobs_done_total"},
            ],
        }
    ],
}


def collector(doc):
    return doc["collectors"][0]


def value(doc):
    return collector(doc)["values"][0]


def _set(target, key, item):
    target[key] = item


# (what it uses, how to change a copy of BASE). Every one of these loads in pgtally too, and the
# schema must accept it.
ACCEPTED = [
    ("target_label", lambda d: _set(collector(d), "target_label", "server")),
    ("legacy_names: counter without _total, gauge with it",
     lambda d: (_set(collector(d), "legacy_names", True),
                _set(value(d), "name", "app_jobs_total"),
                _set(collector(d)["values"][1], "name", "app_jobs_done"))),
    ("legacy_names: false", lambda d: _set(collector(d), "legacy_names", False)),
    ("histogram", lambda d: _set(value(d), "type", "histogram")),
    ("histogram with parse: number",
     lambda d: (_set(value(d), "type", "histogram"), _set(value(d), "parse", "number"))),
    ("mapping, with nan", lambda d: _set(value(d), "mapping", {"on": 1, "off": 0, "?": "nan"})),
    ("mapping to .nan", lambda d: _set(value(d), "mapping", {"?": float("nan")})),
    ("parse: go_duration", lambda d: _set(value(d), "parse", "go_duration")),
    ("on_null: nan", lambda d: _set(value(d), "on_null", "nan")),
    ("on_null: NaN", lambda d: _set(value(d), "on_null", "NaN")),
    ("empty help, every value with its own",
     lambda d: (_set(collector(d), "help", ""),
                [_set(v, "help", "Jobs.") for v in collector(d)["values"]])),
    ("empty help, legacy_names: true",
     lambda d: (_set(collector(d), "help", ""), _set(collector(d), "legacy_names", True))),
]

# (what is wrong, how to break a copy of BASE). Every one of these is an error for the loader too,
# except an empty help on a value without its own: pgtally allows it, the schema warns that the
# metric would have an empty HELP.
BROKEN = [
    ("unknown top-level key", lambda d: _set(d, "colectors", [])),
    ("version 2", lambda d: _set(d, "version", 2)),
    ("no collectors", lambda d: d.pop("collectors")),
    ("unknown collector key (typo)", lambda d: _set(collector(d), "timout", "5s")),
    ("collector without values", lambda d: collector(d).pop("values")),
    ("empty values", lambda d: _set(collector(d), "values", [])),
    ("collector without help", lambda d: collector(d).pop("help")),
    ("empty help and a value without its own", lambda d: _set(collector(d), "help", "")),
    ("neither query nor queries", lambda d: collector(d).pop("query")),
    ("both query and queries", lambda d: _set(collector(d), "queries", [{"query": "SELECT 1"}])),
    ("blank query", lambda d: _set(collector(d), "query", "  \n")),
    ("unknown key in a query variant",
     lambda d: (collector(d).pop("query"),
                _set(collector(d), "queries", [{"query": "SELECT 1", "min_verison": 1}]))),
    ("min_version not a whole number", lambda d: _set(collector(d), "min_version", 150004.5)),
    ("max_version below 0", lambda d: _set(collector(d), "max_version", -1)),
    ("bad scope", lambda d: _set(collector(d), "scope", "cluster")),
    ("bad role", lambda d: _set(collector(d), "role", "replica")),
    ("bad target_type", lambda d: _set(collector(d), "target_type", "pgpool")),
    ("bad duration", lambda d: _set(collector(d), "timeout", "fast")),
    ("duration with a space", lambda d: _set(collector(d), "cache_ttl", "5 s")),
    ("zero timeout", lambda d: _set(collector(d), "timeout", "0s")),
    ("optional not a boolean", lambda d: _set(collector(d), "optional", "maybe")),
    ("max_series 0", lambda d: _set(collector(d), "max_series", 0)),
    ("collector name with a dash", lambda d: _set(collector(d), "name", "app-queue")),
    ("parameter value a list", lambda d: _set(collector(d), "parameters", {"limit": [1]})),
    ("parameter name with a dash", lambda d: _set(collector(d), "parameters", {"a-b": 1})),
    ("pgbouncer collector with scope: database",
     lambda d: _set(collector(d), "target_type", "pgbouncer")),
    ("label named datname in a scope: database collector",
     lambda d: collector(d)["labels"].append("datname")),
    ("label renamed to datname in a scope: database collector",
     lambda d: collector(d)["labels"].append({"column": "db", "name": "datname"})),
    ("label name starting with __", lambda d: collector(d)["labels"].append("__x")),
    ("label map with an unknown key",
     lambda d: collector(d)["labels"].append({"column": "a", "label": "b"})),
    ("label map without column", lambda d: collector(d)["labels"].append({"name": "b"})),
    ("bad value type", lambda d: _set(value(d), "type", "summary")),
    ("value without type", lambda d: value(d).pop("type")),
    ("value without column", lambda d: value(d).pop("column")),
    ("unknown value key", lambda d: _set(value(d), "lables", ["x"])),
    ("counter name without _total",
     lambda d: (_set(value(d), "type", "counter"), _set(value(d), "name", "app_jobs"))),
    ("gauge name ending in _total", lambda d: _set(value(d), "name", "app_jobs_total")),
    ("reserved metric name", lambda d: _set(value(d), "name", "pgtally_jobs")),
    ("metric name pg_up", lambda d: _set(value(d), "name", "pg_up")),
    ("scale 0", lambda d: _set(value(d), "scale", 0)),
    ("on_null neither skip nor a number", lambda d: _set(value(d), "on_null", "zero")),
    ("on_null: NAN (not a NaN spelling)", lambda d: _set(value(d), "on_null", "NAN")),
    ("target_label with a dash", lambda d: _set(collector(d), "target_label", "host-port")),
    ("target_label starting with __", lambda d: _set(collector(d), "target_label", "__server")),
    ("target_label not a string", lambda d: _set(collector(d), "target_label", ["server"])),
    ("target_label datname in a scope: database collector",
     lambda d: _set(collector(d), "target_label", "datname")),
    ("legacy_names not a boolean", lambda d: _set(collector(d), "legacy_names", "legacy")),
    ("parse: foo", lambda d: _set(value(d), "parse", "foo")),
    ("mapping to a string", lambda d: _set(value(d), "mapping", {"on": "yes"})),
    ("mapping not a map", lambda d: _set(value(d), "mapping", ["on", "off"])),
    ("histogram with a mapping",
     lambda d: (_set(value(d), "type", "histogram"), _set(value(d), "mapping", {"on": 1}))),
    ("histogram with parse: go_duration",
     lambda d: (_set(value(d), "type", "histogram"), _set(value(d), "parse", "go_duration"))),
]


def errors_of(validator, document):
    return sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path))


def describe(error):
    path = "/".join(str(part) for part in error.absolute_path) or "(top)"
    return f"{path}: {error.message}"


def markdown_documents(path):
    """The ```yaml blocks of a Markdown file that are whole collector files, with their lines."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    for match in re.finditer(r"^```yaml\n(.*?)^```", text, re.M | re.S):
        try:
            document = yaml.safe_load(match.group(1))
        except yaml.YAMLError:
            continue  # a fragment (e.g. a collector next to a config file), not a whole file
        if isinstance(document, dict) and "collectors" in document and "version" in document:
            line = text.count("\n", 0, match.start()) + 2
            yield f"{path}:{line}", document


def converted_document(pgtally, path):
    """What `pgtally convert` makes of another exporter's file, or None (with a message)."""
    try:
        result = subprocess.run([pgtally, "convert", path], capture_output=True, text=True,
                                check=False)
    except OSError as error:
        print(f"FAIL cannot run {pgtally} (build the pgtally target first): {error}")
        return None
    if result.returncode != 0:
        print(f"FAIL {pgtally} convert {path} exited {result.returncode}:\n{result.stderr}")
        return None
    return yaml.safe_load(result.stdout)


def main(argv):
    if len(argv) < 2 or argv[1].startswith("-"):
        print(__doc__, file=sys.stderr)
        return 2
    with open(argv[1], encoding="utf-8") as f:
        schema = json.load(f)
    jsonschema.Draft7Validator.check_schema(schema)
    validator = jsonschema.Draft7Validator(schema)

    documents = []
    failures = 0
    mode = None
    args = iter(argv[2:])
    for arg in args:
        if arg in ("--markdown", "--convert"):
            mode = arg
            pgtally = next(args) if arg == "--convert" else None
        elif mode == "--markdown" and arg.endswith(".md"):
            documents.extend(markdown_documents(arg))
        elif mode == "--convert":
            document = converted_document(pgtally, arg)
            if document is None:
                failures += 1
            else:
                documents.append((f"`pgtally convert {arg}`", document))
        else:
            with open(arg, encoding="utf-8") as f:
                documents.append((arg, yaml.safe_load(f)))

    for name, document in documents:
        for error in errors_of(validator, document):
            print(f"FAIL {name}: pgtally ships or documents this file, but the schema rejects it: "
                  f"{describe(error)}")
            failures += 1

    for error in errors_of(validator, BASE):
        print(f"FAIL the base document of the broken cases is rejected: {describe(error)}")
        failures += 1
    for what, changes in ACCEPTED:
        document = copy.deepcopy(BASE)
        changes(document)
        for error in errors_of(validator, document):
            print(f"FAIL the schema rejects a valid document ({what}): {describe(error)}")
            failures += 1
    for what, breaks in BROKEN:
        document = copy.deepcopy(BASE)
        breaks(document)
        if not errors_of(validator, document):
            print(f"FAIL the schema accepts a broken document: {what}")
            failures += 1

    print(f"{len(documents)} collector documents checked against {argv[1]}, "
          f"{len(ACCEPTED)} valid and {len(BROKEN)} broken variants tried: {failures} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
