#include "pgtally/config/collector_spec.h"

#include <fmt/format.h>

#include <algorithm>
#include <climits>

namespace pgtally {

std::string SourceLocation::ToString() const {
  if (line <= 0) return file;
  if (column <= 0) return fmt::format("{}:{}", file, line);
  return fmt::format("{}:{}:{}", file, line, column);
}

std::string Diagnostic::ToString() const {
  return where.file.empty() ? message : fmt::format("{}: {}", where.ToString(), message);
}

bool VersionRange::Contains(int server_version) const {
  return (!min || server_version >= *min) && (!max || server_version <= *max);
}

bool VersionRange::Overlaps(const VersionRange& other) const {
  const int lo = std::max(min.value_or(INT_MIN), other.min.value_or(INT_MIN));
  const int hi = std::min(max.value_or(INT_MAX), other.max.value_or(INT_MAX));
  return lo <= hi;
}

std::optional<SqlPosition> FindSqlPosition(std::string_view sql, int position) {
  if (position <= 0) return std::nullopt;
  SqlPosition at;
  int characters = 0;
  for (; at.offset < sql.size(); ++at.offset) {
    const char c = sql[at.offset];
    if ((static_cast<unsigned char>(c) & 0xC0) == 0x80) continue;  // a UTF-8 continuation byte
    if (++characters == position) return at;
    if (c == '\n') {
      ++at.line;
      at.column = 1;
      at.line_offset = at.offset + 1;
    } else {
      ++at.column;
    }
  }
  if (characters + 1 == position) return at;
  return std::nullopt;
}

SourceLocation QueryVariant::Locate(int position) const {
  const auto at = source.verbatim ? FindSqlPosition(sql, position) : std::nullopt;
  if (!at) return source.start;
  int column = at->column - 1;  // characters before it on its line, counted as written in the file
  for (const auto& rewrite : rewrites) {
    if (rewrite.at >= at->line_offset && rewrite.at < at->offset) column += rewrite.longer;
  }
  return {source.start.file, source.start.line + at->line - 1,
          (at->line == 1 ? source.start.column : source.indent_column) + column};
}

const QueryVariant* CollectorSpec::QueryFor(int server_version) const {
  if (!versions.Contains(server_version)) return nullptr;
  for (const auto& query : queries) {
    if (query.versions.Contains(server_version)) return &query;
  }
  return nullptr;
}

bool CollectorSpec::RunsOn(bool in_recovery) const {
  switch (role) {
    case Role::kAny:
      return true;
    case Role::kPrimary:
      return !in_recovery;
    case Role::kStandby:
      return in_recovery;
  }
  return true;
}

std::vector<std::string> CollectorSpec::Arguments(const QueryVariant& query) const {
  std::vector<std::string> arguments;
  arguments.reserve(query.parameters.size());
  for (const auto& wanted : query.parameters) {
    const auto it = std::find_if(parameters.begin(), parameters.end(),
                                 [&](const Parameter& p) { return p.name == wanted; });
    arguments.push_back(it == parameters.end() ? std::string() : it->value);
  }
  return arguments;
}

std::string ToString(const VersionRange& range) {
  if (range.min && range.max) {
    return fmt::format("min_version {}, max_version {}", *range.min, *range.max);
  }
  if (range.min) return fmt::format("min_version {}", *range.min);
  if (range.max) return fmt::format("max_version {}", *range.max);
  return "any version";
}

std::string_view ToString(MetricKind kind) {
  switch (kind) {
    case MetricKind::kCounter:
      return "counter";
    case MetricKind::kHistogram:
      return "histogram";
    case MetricKind::kGauge:
      break;
  }
  return "gauge";
}

std::string_view ToString(Scope scope) { return scope == Scope::kDatabase ? "database" : "server"; }

std::string_view ToString(Role role) {
  switch (role) {
    case Role::kPrimary:
      return "primary";
    case Role::kStandby:
      return "standby";
    case Role::kAny:
      break;
  }
  return "any";
}

std::string_view ToString(TargetType type) {
  return type == TargetType::kPgBouncer ? "pgbouncer" : "postgres";
}

}  // namespace pgtally
