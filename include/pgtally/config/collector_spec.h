#pragma once

#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "pgtally/config/diagnostic.h"
#include "pgtally/config/duration.h"

namespace pgtally {

// The in-memory form of one collector from a collector file (docs/collectors.md). Specs are
// immutable once loaded and shared read-only by every scrape.

// A histogram value column X holds the bucket bounds as an array; the columns X_bucket (an array
// of cumulative counts, one per bound), X_sum and X_count complete it (postgres_exporter's
// HISTOGRAM).
enum class MetricKind { kGauge, kCounter, kHistogram };
enum class Scope { kServer, kDatabase };
enum class Role { kAny, kPrimary, kStandby };
// What a collector talks to: PostgreSQL, or PgBouncer's admin console (SHOW commands only).
enum class TargetType { kPostgres, kPgBouncer };

// An inclusive server_version_num range; an unset bound is open.
struct VersionRange {
  std::optional<int> min;
  std::optional<int> max;

  bool Contains(int server_version) const;
  bool Overlaps(const VersionRange& other) const;
};

struct LabelSpec {
  std::string column;
  std::string name;  // the Prometheus label name
};

struct ValueSpec {
  std::string column;
  std::string metric_name;
  std::string help;
  MetricKind kind = MetricKind::kGauge;
  double scale = 1.0;
  std::optional<double> null_value;  // unset: a NULL drops the sample
  // When not empty, the cell is text looked up here; text not in the map gives NaN.
  std::map<std::string, double> mapping;
  // The cell is a Go duration ("1m30s") and the value its milliseconds, as postgres_exporter's
  // DURATION reads it.
  bool go_duration = false;
  SourceLocation location;
};

// Where character `position` of `sql` is, counted from 1 in characters (UTF-8) as PostgreSQL
// reports an error's position: its line and column, from 1, and the byte offsets of it and of its
// line. Just past the end is a place too ("syntax error at end of input"); nullopt for 0 or less
// and anything further.
struct SqlPosition {
  int line = 1;
  int column = 1;
  std::size_t offset = 0;       // of the character
  std::size_t line_offset = 0;  // of its line's first character
};
std::optional<SqlPosition> FindSqlPosition(std::string_view sql, int position);

struct QueryVariant {
  std::string sql;  // with {{name}} placeholders already replaced by $1, $2, ...
  VersionRange versions;
  std::vector<std::string> parameters;  // the parameter bound to $1, $2, ... by name
  TextPlacement source;                 // where the SQL is written
  // Each placeholder replaced: where its $N starts in `sql`, and how many characters longer the
  // {{name}} it replaces was.
  struct Rewrite {
    std::size_t at;
    int longer;
  };
  std::vector<Rewrite> rewrites;

  // The place in the file of character `position` of `sql`, counted from 1 in characters as
  // PostgreSQL reports an error's position. The start of the SQL when the text is not verbatim in
  // the file or the position is not in it.
  SourceLocation Locate(int position) const;
};

struct Parameter {
  std::string name;
  std::string value;  // the collector's default, or the config file's override
};

// A parameter value from the config file; applies to every collector declaring the name.
struct ParameterOverride {
  std::string name;
  std::string value;
  SourceLocation location;
};

// A cache TTL from the config file for one collector, replacing the one in its YAML.
struct CacheTtlOverride {
  std::string collector;
  Millis ttl{0};
  SourceLocation location;
};

struct CollectorSpec {
  std::string name;
  std::string help;
  std::vector<QueryVariant> queries;
  Scope scope = Scope::kServer;
  Role role = Role::kAny;
  TargetType target_type = TargetType::kPostgres;
  std::vector<Parameter> parameters;
  // A result column holding, on every row, how many rows the query's own LIMIT left out.
  std::string omitted_rows_column;
  VersionRange versions;
  std::optional<Millis> timeout;  // unset: the exporter's default
  bool optional = false;
  Millis cache_ttl{0};
  std::size_t max_series = 10000;
  std::vector<LabelSpec> labels;
  std::vector<ValueSpec> values;
  // A label with this name whose value is the target's "host:port" goes on every series, as
  // postgres_exporter's "server" label does. Empty: none.
  std::string target_label;
  // Metric names kept as another exporter chose them: counters need not end in _total.
  bool legacy_names = false;
  // The denied calls and statements (docs/security.md) the collector's query may use, each by
  // its name: a function in lower case, a statement keyword in upper case.
  std::vector<std::string> allow_unsafe;
  SourceLocation location;

  // The query to run on a server of this version, or nullptr when the collector does not apply.
  const QueryVariant* QueryFor(int server_version) const;
  // Whether the collector runs on a server in this recovery state.
  bool RunsOn(bool in_recovery) const;
  // The values to bind to `query`'s $1, $2, ...
  std::vector<std::string> Arguments(const QueryVariant& query) const;
};

// "min_version 140000, max_version 149999", as a collector file writes it; "any version".
std::string ToString(const VersionRange& range);
std::string_view ToString(MetricKind kind);
std::string_view ToString(Scope scope);
std::string_view ToString(Role role);
std::string_view ToString(TargetType type);

}  // namespace pgtally
