#include "pgtally/config/collector_loader.h"

#include <fmt/format.h>

#include <algorithm>
#include <filesystem>
#include <limits>
#include <map>
#include <set>

#include "config/imported_collectors.h"
#include "config/yaml_reader.h"
#include "pgtally/config/query_safety.h"

namespace pgtally {
namespace {

constexpr std::string_view kReservedPrefix = "pgtally_";
constexpr std::string_view kDatabaseLabel = "datname";

bool IsNameStart(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool IsNameChar(char c) { return IsNameStart(c) || (c >= '0' && c <= '9'); }

bool IsIdentifier(std::string_view name) {
  return !name.empty() && IsNameStart(name.front()) &&
         std::all_of(name.begin(), name.end(), IsNameChar);
}

// A mapping's number: YAML's spellings, and NaN as postgres_exporter files may write it.
std::optional<double> ParseMappedNumber(const std::string& text) {
  double number = 0;
  if (YAML::convert<double>::decode(YAML::Node(text), number)) return number;
  if (text == "NaN" || text == "nan") return std::numeric_limits<double>::quiet_NaN();
  return std::nullopt;
}

std::optional<int> ReadVersion(YamlReader& reader, const YAML::Node& map, const char* key,
                               std::string_view what, bool& ok) {
  const auto value = reader.GetInt(map, key, what);
  if (!value) {
    if (map[key].IsDefined() && !map[key].IsNull()) ok = false;
    return std::nullopt;
  }
  if (*value < 0 || *value > 9999999) {
    reader.Error(map[key],
                 fmt::format("{}: \"{}\" must be a server_version_num such as 150004", what, key));
    ok = false;
    return std::nullopt;
  }
  return static_cast<int>(*value);
}

std::optional<VersionRange> ReadVersionRange(YamlReader& reader, const YAML::Node& map,
                                             std::string_view what) {
  bool ok = true;
  VersionRange range{ReadVersion(reader, map, "min_version", what, ok),
                     ReadVersion(reader, map, "max_version", what, ok)};
  if (range.min && range.max && *range.min > *range.max) {
    reader.Error(map, fmt::format("{}: min_version {} is above max_version {}", what, *range.min,
                                  *range.max));
    ok = false;
  }
  return ok ? std::optional(range) : std::nullopt;
}

// Replaces every {{name}} in `query.sql` by $1, $2, ... (one number per distinct name) and
// records the names in order. Text between {{ and }} that is not an identifier is left alone, so
// array literals such as '{{1,2},{3,4}}' pass through. Returns the undeclared names.
std::vector<std::string> BindPlaceholders(QueryVariant& query,
                                          const std::vector<Parameter>& declared) {
  std::vector<std::string> undeclared;
  std::string sql;
  std::size_t at = 0;
  while (true) {
    const auto open = query.sql.find("{{", at);
    const auto close = open == std::string::npos ? open : query.sql.find("}}", open + 2);
    if (close == std::string::npos) break;
    std::string_view inside(query.sql.data() + open + 2, close - open - 2);
    inside.remove_prefix(std::min(inside.find_first_not_of(' '), inside.size()));
    inside.remove_suffix(inside.size() - (inside.find_last_not_of(' ') + 1));
    if (!IsIdentifier(inside)) {
      sql.append(query.sql, at, open + 2 - at);
      at = open + 2;
      continue;
    }
    const std::string name(inside);
    auto it = std::find(query.parameters.begin(), query.parameters.end(), name);
    if (it == query.parameters.end()) {
      query.parameters.push_back(name);
      it = query.parameters.end() - 1;
      if (std::none_of(declared.begin(), declared.end(),
                       [&](const Parameter& p) { return p.name == name; })) {
        undeclared.push_back(name);
      }
    }
    sql.append(query.sql, at, open - at);
    const std::string token = fmt::format("${}", it - query.parameters.begin() + 1);
    query.rewrites.push_back(
        {sql.size(), static_cast<int>(close + 2 - open) - static_cast<int>(token.size())});
    sql += token;
    at = close + 2;
  }
  sql.append(query.sql, at);
  query.sql = std::move(sql);
  return undeclared;
}

void ReadParameters(YamlReader& reader, const YAML::Node& node, const std::string& what,
                    CollectorSpec& spec) {
  auto settings = reader.GetScalarMap(node, "parameters", what);
  if (!settings) return;
  for (auto& setting : *settings) {
    if (!IsIdentifier(setting.name)) {
      reader.Error(node["parameters"],
                   fmt::format("{}: parameter name \"{}\" must be letters, digits and _", what,
                               setting.name));
      continue;
    }
    spec.parameters.push_back({std::move(setting.name), std::move(setting.value)});
  }
}

void ReadQueries(YamlReader& reader, const YAML::Node& node, const std::string& what,
                 CollectorSpec& spec) {
  const bool has_query = node["query"].IsDefined();
  const bool has_queries = node["queries"].IsDefined();
  if (has_query == has_queries) {
    reader.Error(node, fmt::format("{}: give exactly one of \"query\" or \"queries\"", what));
    return;
  }
  if (has_query) {
    if (auto sql = reader.GetString(node, "query", what, true)) {
      spec.queries.push_back({*sql, {}, {}, reader.PlacementOf(node["query"]), {}});
    }
  } else if (reader.ExpectSequence(node["queries"], what + " \"queries\"")) {
    for (const auto& item : node["queries"]) {
      const std::string item_what = what + " query variant";
      if (!reader.ExpectMap(item, item_what)) continue;
      reader.CheckKeys(item, kQueryVariantKeys, item_what);
      auto sql = reader.GetString(item, "query", item_what, true);
      auto range = ReadVersionRange(reader, item, item_what);
      if (!sql || !range) continue;
      for (const auto& earlier : spec.queries) {
        if (earlier.versions.Overlaps(*range)) {
          reader.Error(
              item, fmt::format("{}: version range overlaps an earlier variant; give each variant "
                                "its own min_version/max_version",
                                item_what));
        }
      }
      spec.queries.push_back({*sql, *range, {}, reader.PlacementOf(item["query"]), {}});
    }
  }
  const YAML::Node at = has_query ? node["query"] : node["queries"];
  for (auto& query : spec.queries) {
    if (query.sql.find_first_not_of(" \t\r\n") == std::string::npos) {
      reader.Error(node, fmt::format("{}: the query is empty", what));
    }
    for (const auto& name : BindPlaceholders(query, spec.parameters)) {
      reader.Error(at, fmt::format("{}: the query uses {{{{{}}}}}, which is not declared under "
                                   "\"parameters\"",
                                   what, name));
    }
  }
}

// The names of the denied calls and statements the collector's queries use.
std::set<std::string> UnsafeNamesUsed(const CollectorSpec& spec) {
  std::set<std::string> names;
  for (const auto& query : spec.queries) {
    for (auto& use : FindUnsafeUses(query.sql)) names.insert(std::move(use.name));
  }
  return names;
}

// allow_unsafe: each name must be on the deny-list and used by the query, so that allowing one
// denied call never allows another, and a stale entry does not wait for the next edit to apply.
void ReadAllowUnsafe(YamlReader& reader, const YAML::Node& node, const std::string& what,
                     CollectorSpec& spec) {
  const auto names = reader.GetStringList(node, "allow_unsafe", what);
  if (!names) return;
  const auto used = UnsafeNamesUsed(spec);
  for (const auto& name : *names) {
    const std::string normalized = NormalizeUnsafeName(name);
    if (normalized.empty()) {
      reader.Error(node["allow_unsafe"],
                   fmt::format("{}: allow_unsafe: \"{}\" is not a denied function or statement "
                               "(docs/security.md lists them); remove it",
                               what, name));
    } else if (!used.contains(normalized)) {
      reader.Error(
          node["allow_unsafe"],
          fmt::format("{}: allow_unsafe: the query does not use {}; remove it", what, normalized));
    } else if (std::ranges::find(spec.allow_unsafe, normalized) == spec.allow_unsafe.end()) {
      spec.allow_unsafe.push_back(normalized);
    }
  }
}

// Byte `offset` of `sql` counted as PostgreSQL counts positions: in characters, from 1.
int CharacterPosition(std::string_view sql, std::size_t offset) {
  const auto before = sql.substr(0, offset);
  return 1 + static_cast<int>(std::ranges::count_if(
                 before, [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; }));
}

// Reports each use of a denied call or statement that the collector does not allow, at its
// place in the file.
void ReportUnsafeUses(const CollectorSpec& spec, CollectorFormat format, Diagnostics& errors) {
  std::set<std::pair<std::string, std::string>> reported;  // a place and a name
  for (const auto& query : spec.queries) {
    for (const auto& use : FindUnsafeUses(query.sql)) {
      if (std::ranges::find(spec.allow_unsafe, use.name) != spec.allow_unsafe.end()) continue;
      const SourceLocation where = query.Locate(CharacterPosition(query.sql, use.offset));
      if (!reported.emplace(where.ToString(), use.name).second) continue;
      const std::string thing = use.statement ? use.name : use.name + "()";
      if (!use.allowable) {
        errors.push_back(
            {where, fmt::format("collector \"{}\": {} {}", spec.name, thing, use.reason)});
        continue;
      }
      std::string way_out;
      if (format == CollectorFormat::kPgtally) {
        way_out = fmt::format(
            "remove it; if the collector really must, add allow_unsafe: [{}] "
            "(docs/security.md: the risk is yours)",
            use.name);
      } else {
        way_out = fmt::format(
            "remove it; if the collector really must, write it in pgtally's "
            "format (docs/importing.md) with allow_unsafe: [{}]",
            use.name);
      }
      errors.push_back({where, fmt::format("collector \"{}\": {} {}, which is not monitoring; {}",
                                           spec.name, thing, use.reason, way_out)});
    }
  }
}

void ReadLabels(YamlReader& reader, const YAML::Node& node, const std::string& what,
                CollectorSpec& spec) {
  const YAML::Node labels = node["labels"];
  if (!labels.IsDefined() || labels.IsNull()) return;
  if (!reader.ExpectSequence(labels, what + " \"labels\"")) return;
  std::set<std::string> seen;
  for (const auto& item : labels) {
    LabelSpec label;
    if (item.IsScalar()) {
      label.column = label.name = item.Scalar();
    } else if (reader.ExpectMap(item, what + " label")) {
      reader.CheckKeys(item, kLabelKeys, what + " label");
      label.column = reader.GetString(item, "column", what + " label", true).value_or("");
      label.name = reader.GetString(item, "name", what + " label").value_or(label.column);
    }
    if (label.column.empty()) continue;
    if (!IsValidLabelName(label.name)) {
      reader.Error(item,
                   fmt::format("{}: \"{}\" is not a valid label name (letters, digits and _, not "
                               "starting with a digit or __)",
                               what, label.name));
    } else if (spec.scope == Scope::kDatabase && label.name == kDatabaseLabel) {
      reader.Error(item,
                   fmt::format("{}: label \"{}\" is added by pgtally to every scope: database "
                               "collector; remove it or rename it",
                               what, kDatabaseLabel));
    } else if (!seen.insert(label.name).second) {
      reader.Error(item, fmt::format("{}: label \"{}\" is named twice", what, label.name));
    }
    spec.labels.push_back(std::move(label));
  }
}

std::optional<ValueSpec> ReadValue(YamlReader& reader, const YAML::Node& item,
                                   const std::string& collector_what, const CollectorSpec& spec) {
  if (!reader.ExpectMap(item, collector_what + " value")) return std::nullopt;
  ValueSpec value;
  value.location = reader.Where(item);
  value.column = reader.GetString(item, "column", collector_what + " value", true).value_or("");
  const std::string what = fmt::format("{} value \"{}\"", collector_what, value.column);
  reader.CheckKeys(item, kValueKeys, what);
  if (value.column.empty()) return std::nullopt;

  bool ok = true;
  if (auto type = reader.GetString(item, "type", what, true)) {
    if (*type == "gauge") {
      value.kind = MetricKind::kGauge;
    } else if (*type == "counter") {
      value.kind = MetricKind::kCounter;
    } else if (*type == "histogram") {
      value.kind = MetricKind::kHistogram;
    } else {
      reader.Error(
          item["type"],
          fmt::format("{}: type must be gauge, counter or histogram, not \"{}\"", what, *type));
      ok = false;
    }
  } else {
    ok = false;
  }

  for (const auto& label : spec.labels) {
    if (label.column == value.column) {
      reader.Error(item, fmt::format("{}: column \"{}\" is also a label", what, value.column));
      ok = false;
    }
  }
  if (value.column == spec.omitted_rows_column) {
    reader.Error(
        item, fmt::format("{}: column \"{}\" is also the omitted_rows_column", what, value.column));
    ok = false;
  }

  const YAML::Node name_node = item["name"].IsDefined() ? item["name"] : item;
  if (auto name = reader.GetString(item, "name", what)) {
    value.metric_name = *name;
  } else {
    value.metric_name = spec.name + "_" + value.column;
    if (value.kind == MetricKind::kCounter && !value.metric_name.ends_with("_total")) {
      value.metric_name += "_total";
    }
  }
  if (!IsValidMetricName(value.metric_name)) {
    reader.Error(name_node,
                 fmt::format("{}: \"{}\" is not a valid metric name (letters, digits and _, "
                             "not starting with a digit)",
                             what, value.metric_name));
    ok = false;
  } else if (spec.legacy_names) {
    // Names as another exporter made them, kept so that dashboards and alerts still match.
  } else if (ok && value.kind == MetricKind::kCounter && !value.metric_name.ends_with("_total")) {
    reader.Error(name_node, fmt::format("{}: counter \"{}\" must have a name ending in _total",
                                        what, value.metric_name));
    ok = false;
  } else if (ok && value.kind == MetricKind::kGauge && value.metric_name.ends_with("_total")) {
    reader.Error(name_node,
                 fmt::format("{}: gauge \"{}\" must not end in _total, which marks counters; "
                             "use type: counter or another name",
                             what, value.metric_name));
    ok = false;
  }

  value.help = reader.GetString(item, "help", what).value_or(spec.help);
  if (item["scale"].IsDefined()) {
    if (auto scale = reader.GetNumber(item, "scale", what)) {
      if (*scale == 0) {
        reader.Error(item["scale"], fmt::format("{}: scale must not be 0", what));
        ok = false;
      }
      value.scale = *scale;
    } else {
      ok = false;
    }
  }
  if (item["on_null"].IsDefined()) {
    const auto on_null = reader.GetString(item, "on_null", what);
    double replacement = 0;
    if (on_null == "skip") {
      value.null_value.reset();
    } else if (on_null == "nan" || on_null == "NaN" || on_null == ".nan") {
      value.null_value = std::numeric_limits<double>::quiet_NaN();
    } else if (on_null && YAML::convert<double>::decode(item["on_null"], replacement)) {
      value.null_value = replacement;
    } else {
      reader.Error(item["on_null"], fmt::format("{}: on_null must be skip, nan or a number", what));
      ok = false;
    }
  }
  if (item["mapping"].IsDefined()) {
    if (auto mapping = reader.GetScalarMap(item, "mapping", what)) {
      for (const auto& entry : *mapping) {
        if (auto number = ParseMappedNumber(entry.value)) {
          value.mapping[entry.name] = *number;
        } else {
          reader.Error(item["mapping"], fmt::format("{}: mapping: \"{}\" must map to a number, "
                                                    "not \"{}\"",
                                                    what, entry.name, entry.value));
          ok = false;
        }
      }
    } else {
      ok = false;
    }
  }
  if (auto parse = reader.GetString(item, "parse", what)) {
    if (*parse == "go_duration") {
      value.go_duration = true;
    } else if (*parse != "number") {
      reader.Error(item["parse"], fmt::format("{}: parse must be number or go_duration, not \"{}\"",
                                              what, *parse));
      ok = false;
    }
  }
  if (value.kind == MetricKind::kHistogram && (value.go_duration || !value.mapping.empty())) {
    reader.Error(item, fmt::format("{}: a histogram reads arrays of numbers; it cannot have "
                                   "mapping or parse",
                                   what));
    ok = false;
  }
  return ok ? std::optional(std::move(value)) : std::nullopt;
}

std::optional<CollectorSpec> ReadCollector(YamlReader& reader, const YAML::Node& node) {
  if (!reader.ExpectMap(node, "collector")) return std::nullopt;
  CollectorSpec spec;
  spec.location = reader.Where(node);
  const auto name = reader.GetString(node, "name", "collector", true);
  if (!name) return std::nullopt;
  spec.name = *name;
  const std::string what = fmt::format("collector \"{}\"", spec.name);
  if (!IsValidMetricName(spec.name)) {
    reader.Error(node["name"],
                 fmt::format("{}: the name must be letters, digits and _, starting with a "
                             "letter; it prefixes the collector's metric names",
                             what));
  }
  reader.CheckKeys(node, kCollectorKeys, what);
  spec.help = reader.GetString(node, "help", what, true).value_or("");

  if (auto scope = reader.GetString(node, "scope", what)) {
    if (*scope == "database") {
      spec.scope = Scope::kDatabase;
    } else if (*scope != "server") {
      reader.Error(node["scope"],
                   fmt::format("{}: scope must be server or database, not \"{}\"", what, *scope));
    }
  }
  if (auto role = reader.GetString(node, "role", what)) {
    if (*role == "primary") {
      spec.role = Role::kPrimary;
    } else if (*role == "standby") {
      spec.role = Role::kStandby;
    } else if (*role != "any") {
      reader.Error(node["role"], fmt::format("{}: role must be any, primary or standby, not \"{}\"",
                                             what, *role));
    }
  }
  if (auto range = ReadVersionRange(reader, node, what)) spec.versions = *range;
  if (auto timeout = reader.GetDuration(node, "timeout", what)) {
    if (timeout->count() == 0) {
      reader.Error(node["timeout"], fmt::format("{}: timeout must be above 0", what));
    }
    spec.timeout = *timeout;
  }
  spec.optional = reader.GetBool(node, "optional", what).value_or(false);
  spec.cache_ttl = reader.GetDuration(node, "cache_ttl", what).value_or(Millis(0));
  if (auto max_series = reader.GetInt(node, "max_series", what)) {
    if (*max_series < 1) {
      reader.Error(node["max_series"], fmt::format("{}: max_series must be at least 1", what));
    } else {
      spec.max_series = static_cast<std::size_t>(*max_series);
    }
  }

  if (auto type = reader.GetString(node, "target_type", what)) {
    if (*type == "pgbouncer") {
      spec.target_type = TargetType::kPgBouncer;
    } else if (*type != "postgres") {
      reader.Error(
          node["target_type"],
          fmt::format("{}: target_type must be postgres or pgbouncer, not \"{}\"", what, *type));
    }
  }
  spec.legacy_names = reader.GetBool(node, "legacy_names", what).value_or(false);
  ReadParameters(reader, node, what, spec);
  ReadQueries(reader, node, what, spec);
  ReadAllowUnsafe(reader, node, what, spec);
  ReadLabels(reader, node, what, spec);
  if (auto label = reader.GetString(node, "target_label", what)) {
    if (!IsValidLabelName(*label)) {
      reader.Error(node["target_label"],
                   fmt::format("{}: target_label \"{}\" is not a valid label name", what, *label));
    } else if (std::ranges::find(spec.labels, *label, &LabelSpec::name) != spec.labels.end() ||
               (spec.scope == Scope::kDatabase && *label == kDatabaseLabel)) {
      reader.Error(node["target_label"],
                   fmt::format("{}: target_label \"{}\" is already a label", what, *label));
    } else {
      spec.target_label = *label;
    }
  }
  spec.omitted_rows_column = reader.GetString(node, "omitted_rows_column", what).value_or("");
  for (const auto& label : spec.labels) {
    if (!spec.omitted_rows_column.empty() && label.column == spec.omitted_rows_column) {
      reader.Error(node["omitted_rows_column"],
                   fmt::format("{}: column \"{}\" is the omitted_rows_column and a label", what,
                               label.column));
    }
  }
  if (spec.target_type == TargetType::kPgBouncer) {
    // The admin console speaks only the simple query protocol and knows nothing of databases,
    // recovery or bind parameters.
    if (spec.scope != Scope::kServer || spec.role != Role::kAny || !spec.parameters.empty()) {
      reader.Error(node, fmt::format("{}: a target_type: pgbouncer collector cannot have scope: "
                                     "database, a role or parameters",
                                     what));
    }
  }

  const YAML::Node values = node["values"];
  if (!values.IsDefined() || values.IsNull()) {
    reader.Error(
        node, fmt::format("{}: missing required key \"values\" (at least one value column)", what));
  } else if (reader.ExpectSequence(values, what + " \"values\"")) {
    if (values.size() == 0) reader.Error(values, fmt::format("{}: \"values\" is empty", what));
    for (const auto& item : values) {
      if (auto value = ReadValue(reader, item, what, spec)) {
        spec.values.push_back(std::move(*value));
      }
    }
  }
  return spec;
}

// The version ranges a collector runs on: each variant's, within the collector's own.
std::vector<VersionRange> RunsOnVersions(const CollectorSpec& spec) {
  std::vector<VersionRange> ranges;
  for (const auto& query : spec.queries) {
    VersionRange range = query.versions;
    if (spec.versions.min)
      range.min = std::max(range.min.value_or(*spec.versions.min), *spec.versions.min);
    if (spec.versions.max)
      range.max = std::min(range.max.value_or(*spec.versions.max), *spec.versions.max);
    ranges.push_back(range);
  }
  return ranges;
}

// Whether no server runs both collectors: they are for different roles or versions.
bool NeverRunTogether(const CollectorSpec& a, const CollectorSpec& b) {
  if (a.role != Role::kAny && b.role != Role::kAny && a.role != b.role) return true;
  for (const auto& x : RunsOnVersions(a)) {
    for (const auto& y : RunsOnVersions(b)) {
      if (x.Overlaps(y)) return false;
    }
  }
  return true;
}

// The names a value's family takes in the exposition: its own, and a histogram's series
// (x_bucket, x_sum, x_count), which no other family may have.
std::vector<std::string> ClaimedNames(const ValueSpec& value) {
  if (value.kind != MetricKind::kHistogram) return {value.metric_name};
  return {value.metric_name, value.metric_name + "_bucket", value.metric_name + "_sum",
          value.metric_name + "_count"};
}

bool IsReservedName(std::string_view name) {
  return name.starts_with(kReservedPrefix) || name == "pg_up";
}

// What only one value can get wrong: a name that pgtally's own metrics use (pg_up, pgtally_*: a
// second pg_up would be a spoofed one), or a histogram's "le" label taken by a label of its own.
void CheckOwnNames(const CollectorSpec& spec, const ValueSpec& value, Diagnostics& errors) {
  for (const auto& name : ClaimedNames(value)) {
    if (IsReservedName(name)) {
      errors.push_back(
          {value.location, fmt::format("collector \"{}\": metric name \"{}\" is reserved for "
                                       "pgtally's own metrics (pg_up and every pgtally_*); choose "
                                       "another name",
                                       spec.name, name)});
      return;
    }
  }
  const bool le_label =
      std::ranges::find(spec.labels, "le", &LabelSpec::name) != spec.labels.end() ||
      spec.target_label == "le";
  if (value.kind == MetricKind::kHistogram && le_label) {
    errors.push_back({value.location,
                      fmt::format("collector \"{}\": histogram \"{}\" gives its buckets the "
                                  "label \"le\", which the collector also has; rename that label",
                                  spec.name, value.metric_name)});
  }
}

std::string ClashMessage(const std::string& name, const ValueSpec& value, const ValueSpec& other) {
  const auto describe = [&](const ValueSpec& v) {
    return v.metric_name == name
               ? fmt::format("metric \"{}\"", name)
               : fmt::format("histogram \"{}\" (its series {})", v.metric_name, name);
  };
  if (value.metric_name == name && other.metric_name == name) {
    return fmt::format("metric \"{}\" is already defined at {}", name, other.location.ToString());
  }
  return fmt::format(
      "{} clashes with {} defined at {}: a histogram x writes x_bucket, x_sum and "
      "x_count, which no other metric may be named; rename one",
      describe(value), describe(other), other.location.ToString());
}

// What each collector of a file can get wrong alone, whatever the format it is written in.
void CheckEachCollector(const std::vector<CollectorSpec>& collectors, CollectorFormat format,
                        Diagnostics& errors) {
  for (const auto& spec : collectors) {
    ReportUnsafeUses(spec, format, errors);
    for (const auto& value : spec.values) CheckOwnNames(spec, value, errors);
  }
}

LoadedCollectors ParseFile(std::string_view text, const std::string& filename,
                           CollectorFormat format) {
  LoadedCollectors loaded;
  YamlReader reader(filename, loaded.errors);
  const auto root = reader.Parse(text);
  if (!root) return loaded;
  if (format == CollectorFormat::kAuto) format = DetectFormat(*root);
  if (format != CollectorFormat::kPgtally) {
    if (!reader.ExpectMap(*root, "a collector file")) return loaded;
    if (format == CollectorFormat::kPostgresExporter) {
      ReadPostgresExporterFile(reader, *root, loaded.collectors);
    } else {
      ReadPgExporterFile(reader, *root, loaded.collectors);
    }
    CheckEachCollector(loaded.collectors, format, loaded.errors);
    return loaded;
  }
  if (!root->IsMap()) {
    reader.Error(*root,
                 "a collector file must be a map with the keys \"version\" and \"collectors\"");
    return loaded;
  }
  reader.CheckKeys(*root, kCollectorFileKeys, "collector file");
  const auto version = reader.GetInt(*root, "version", "collector file");
  if (!(*root)["version"].IsDefined()) {
    reader.Error(*root, "collector file: missing required key \"version\" (use version: 1)");
  } else if (version && *version != 1) {
    reader.Error((*root)["version"],
                 fmt::format("collector file: version {} is not supported; this "
                             "pgtally reads version 1",
                             *version));
    return loaded;
  }
  const YAML::Node collectors = (*root)["collectors"];
  if (!collectors.IsDefined()) {
    reader.Error(*root, "collector file: missing required key \"collectors\"");
    return loaded;
  }
  if (!reader.ExpectSequence(collectors, "\"collectors\"")) return loaded;
  for (const auto& node : collectors) {
    if (auto spec = ReadCollector(reader, node)) loaded.collectors.push_back(std::move(*spec));
  }
  CheckEachCollector(loaded.collectors, format, loaded.errors);
  return loaded;
}

void LoadFile(const std::filesystem::path& path, CollectorFormat format, LoadedCollectors& into) {
  const auto text = ReadConfigFile(path.string(), into.errors);
  if (!text) return;
  auto loaded = ParseFile(*text, path.string(), format);
  for (auto& spec : loaded.collectors) into.collectors.push_back(std::move(spec));
  for (auto& error : loaded.errors) into.errors.push_back(std::move(error));
}

}  // namespace

bool IsValidMetricName(std::string_view name) { return IsIdentifier(name); }

bool IsValidLabelName(std::string_view name) {
  return IsIdentifier(name) && !name.starts_with("__");
}

LoadedCollectors ParseCollectorFile(std::string_view text, const std::string& filename,
                                    CollectorFormat format) {
  auto loaded = ParseFile(text, filename, format);
  CheckUniqueNames(loaded.collectors, loaded.errors);
  return loaded;
}

std::vector<std::string> CollectorFiles(const std::vector<std::string>& paths,
                                        Diagnostics& errors) {
  namespace fs = std::filesystem;
  std::vector<std::string> files;
  for (const auto& path : paths) {
    std::error_code error;
    if (fs::is_directory(path, error)) {
      std::vector<std::string> listed;
      for (const auto& entry : fs::directory_iterator(path, error)) {
        const auto name = entry.path().filename().string();
        const auto ext = entry.path().extension();
        // Hidden files are editors' scratch copies, or Kubernetes' ..data links to ConfigMap
        // versions: never collectors. *.test.yaml files hold fixtures for `pgtally test`.
        const bool test_file = entry.path().stem().extension() == ".test";
        if ((ext == ".yaml" || ext == ".yml") && !name.starts_with('.') && !test_file &&
            !entry.is_directory()) {
          listed.push_back(entry.path().string());
        }
      }
      if (error) errors.push_back({{path, 0, 0}, "cannot list the directory: " + error.message()});
      std::sort(listed.begin(), listed.end());
      files.insert(files.end(), listed.begin(), listed.end());
    } else if (fs::exists(path, error)) {
      files.push_back(path);
    } else {
      errors.push_back({{path, 0, 0}, "no such file or directory"});
    }
  }
  return files;
}

LoadedCollectors LoadCollectors(const std::vector<std::string>& paths, CollectorFormat format) {
  LoadedCollectors loaded;
  for (const auto& file : CollectorFiles(paths, loaded.errors)) LoadFile(file, format, loaded);
  CheckUniqueNames(loaded.collectors, loaded.errors);
  return loaded;
}

Diagnostics ApplyParameterOverrides(std::vector<CollectorSpec>& collectors,
                                    const std::vector<ParameterOverride>& overrides) {
  Diagnostics errors;
  for (const auto& override : overrides) {
    bool used = false;
    for (auto& spec : collectors) {
      for (auto& parameter : spec.parameters) {
        if (parameter.name == override.name) {
          parameter.value = override.value;
          used = true;
        }
      }
    }
    if (!used) {
      errors.push_back(
          {override.location,
           fmt::format("parameter \"{}\" is not declared by any loaded collector", override.name)});
    }
  }
  return errors;
}

Diagnostics ApplyCacheTtlOverrides(std::vector<CollectorSpec>& collectors,
                                   const std::vector<CacheTtlOverride>& overrides) {
  Diagnostics errors;
  for (const auto& override : overrides) {
    const auto spec = std::ranges::find(collectors, override.collector, &CollectorSpec::name);
    if (spec == collectors.end()) {
      errors.push_back({override.location, fmt::format("cache_ttl: no collector is named \"{}\"",
                                                       override.collector)});
    } else {
      spec->cache_ttl = override.ttl;
    }
  }
  return errors;
}

void CheckUniqueNames(const std::vector<CollectorSpec>& collectors, Diagnostics& errors,
                      std::size_t from) {
  // A clash between two collectors before `from` was reported already; so was one between two
  // after it, when they were loaded together.
  const auto reported = [from](std::size_t a, std::size_t b) {
    return from > 0 && (a < from) == (b < from);
  };
  std::map<std::string, std::size_t> collector_names;
  // The values claiming each name so far: their family's, and for a histogram its series'.
  struct Claim {
    std::size_t collector;
    const ValueSpec* value;
  };
  std::map<std::string, std::vector<Claim>> claims;
  for (std::size_t i = 0; i < collectors.size(); ++i) {
    const auto& spec = collectors[i];
    if (auto [it, fresh] = collector_names.emplace(spec.name, i);
        !fresh && !reported(it->second, i)) {
      errors.push_back(
          {spec.location, fmt::format("collector \"{}\" is already defined at {}", spec.name,
                                      collectors[it->second].location.ToString())});
    }
    for (const auto& value : spec.values) {
      for (const auto& name : ClaimedNames(value)) {
        auto& claimants = claims[name];
        for (const auto& other : claimants) {
          if (reported(other.collector, i) ||
              (other.collector != i && NeverRunTogether(spec, collectors[other.collector]))) {
            continue;
          }
          errors.push_back({value.location, ClashMessage(name, value, *other.value)});
          break;
        }
        claimants.push_back({i, &value});
      }
    }
  }
}

}  // namespace pgtally
