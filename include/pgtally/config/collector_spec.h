#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "pgtally/config/diagnostic.h"
#include "pgtally/config/duration.h"

namespace pgtally {

// The in-memory form of one collector from a collector file (docs/collectors.md). Specs are
// immutable once loaded and shared read-only by every scrape.

enum class MetricKind { kGauge, kCounter };
enum class Scope { kServer, kDatabase };
enum class Role { kAny, kPrimary, kStandby };

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
  SourceLocation location;
};

struct QueryVariant {
  std::string sql;
  VersionRange versions;
};

struct CollectorSpec {
  std::string name;
  std::string help;
  std::vector<QueryVariant> queries;
  Scope scope = Scope::kServer;
  Role role = Role::kAny;
  VersionRange versions;
  std::optional<Millis> timeout;  // unset: the exporter's default
  bool optional = false;
  Millis cache_ttl{0};
  std::size_t max_series = 10000;
  std::vector<LabelSpec> labels;
  std::vector<ValueSpec> values;
  SourceLocation location;

  // The query to run on a server of this version, or nullptr when the collector does not apply.
  const QueryVariant* QueryFor(int server_version) const;
  // Whether the collector runs on a server in this recovery state.
  bool RunsOn(bool in_recovery) const;
};

std::string_view ToString(MetricKind kind);
std::string_view ToString(Scope scope);
std::string_view ToString(Role role);

}  // namespace pgtally
