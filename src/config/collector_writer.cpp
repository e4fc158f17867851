#include "pgtally/config/collector_writer.h"

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <cmath>
#include <string_view>

#include "pgtally/config/duration.h"

namespace pgtally {
namespace {

// The query with $1, $2, ... turned back into the {{name}} placeholders they were read from.
std::string SqlWithPlaceholders(const QueryVariant& query) {
  std::string sql;
  for (std::size_t at = 0; at < query.sql.size();) {
    std::size_t end = at + 1;
    while (end < query.sql.size() && std::isdigit(static_cast<unsigned char>(query.sql[end]))) {
      ++end;
    }
    if (query.sql[at] == '$' && end > at + 1) {
      const auto number = std::stoul(query.sql.substr(at + 1, end - at - 1));
      if (number >= 1 && number <= query.parameters.size()) {
        sql += "{{" + query.parameters[number - 1] + "}}";
        at = end;
        continue;
      }
    }
    sql += query.sql[at++];
  }
  return sql;
}

// A query as a block scalar (|) where that reads back as the same text, else as yaml-cpp picks.
// yaml-cpp writes no chomping or indentation indicator, so the block must end in exactly one
// newline (left to the reader's clipping: written out it would add a blank line), and its first
// line must not start with white space, which would count as indentation; a line of only spaces
// would read back empty.
void WriteSql(YAML::Emitter& out, const std::string& sql) {
  bool block = sql.size() > 1 && sql.ends_with('\n') && !sql.ends_with("\n\n") &&
               sql.front() != ' ' && sql.front() != '\t' && sql.front() != '\n' &&
               sql.find('\r') == std::string::npos;
  for (std::size_t line = 0; block && line < sql.size(); line = sql.find('\n', line) + 1) {
    const auto end = sql.find('\n', line);
    const auto text = std::string_view(sql).substr(line, end - line);
    block = text.empty() || text.find_first_not_of(" \t") != std::string_view::npos;
  }
  if (block) {
    out << YAML::Literal << sql.substr(0, sql.size() - 1);
  } else {
    out << sql;  // plain when that reads back the same, else double-quoted
  }
}

void WriteVersions(YAML::Emitter& out, const VersionRange& range) {
  if (range.min) out << YAML::Key << "min_version" << YAML::Value << *range.min;
  if (range.max) out << YAML::Key << "max_version" << YAML::Value << *range.max;
}

void WriteNumber(YAML::Emitter& out, double number) {
  if (std::isnan(number)) {
    out << "nan";
  } else {
    out << fmt::format("{}", number);
  }
}

void WriteValue(YAML::Emitter& out, const CollectorSpec& spec, const ValueSpec& value) {
  out << YAML::BeginMap;
  out << YAML::Key << "column" << YAML::Value << value.column;
  out << YAML::Key << "type" << YAML::Value << std::string(ToString(value.kind));
  out << YAML::Key << "name" << YAML::Value << value.metric_name;
  if (value.help != spec.help) out << YAML::Key << "help" << YAML::Value << value.help;
  if (value.scale != 1.0) {
    out << YAML::Key << "scale" << YAML::Value;
    WriteNumber(out, value.scale);
  }
  if (value.null_value) {
    out << YAML::Key << "on_null" << YAML::Value;
    WriteNumber(out, *value.null_value);
  }
  if (!value.mapping.empty()) {
    out << YAML::Key << "mapping" << YAML::Value << YAML::BeginMap;
    for (const auto& [text, number] : value.mapping) {
      // Quoted: YAML 1.1 tools read a bare on, off, yes or no as a boolean.
      out << YAML::Key << YAML::DoubleQuoted << text << YAML::Value;
      WriteNumber(out, number);
    }
    out << YAML::EndMap;
  }
  if (value.go_duration) out << YAML::Key << "parse" << YAML::Value << "go_duration";
  out << YAML::EndMap;
}

void WriteCollector(YAML::Emitter& out, const CollectorSpec& spec) {
  out << YAML::BeginMap;
  out << YAML::Key << "name" << YAML::Value << spec.name;
  out << YAML::Key << "help" << YAML::Value << spec.help;
  if (spec.scope != Scope::kServer) {
    out << YAML::Key << "scope" << YAML::Value << std::string(ToString(spec.scope));
  }
  if (spec.role != Role::kAny) {
    out << YAML::Key << "role" << YAML::Value << std::string(ToString(spec.role));
  }
  if (spec.target_type != TargetType::kPostgres) {
    out << YAML::Key << "target_type" << YAML::Value << std::string(ToString(spec.target_type));
  }
  WriteVersions(out, spec.versions);
  if (spec.timeout) {
    out << YAML::Key << "timeout" << YAML::Value << FormatDuration(*spec.timeout);
  }
  if (spec.optional) out << YAML::Key << "optional" << YAML::Value << true;
  if (spec.cache_ttl.count() > 0) {
    out << YAML::Key << "cache_ttl" << YAML::Value << FormatDuration(spec.cache_ttl);
  }
  if (spec.max_series != CollectorSpec{}.max_series) {
    out << YAML::Key << "max_series" << YAML::Value << spec.max_series;
  }
  if (!spec.parameters.empty()) {
    out << YAML::Key << "parameters" << YAML::Value << YAML::BeginMap;
    for (const auto& parameter : spec.parameters) {
      out << YAML::Key << parameter.name << YAML::Value << parameter.value;
    }
    out << YAML::EndMap;
  }
  if (spec.queries.size() == 1 && !spec.queries.front().versions.min &&
      !spec.queries.front().versions.max) {
    out << YAML::Key << "query" << YAML::Value;
    WriteSql(out, SqlWithPlaceholders(spec.queries.front()));
  } else {
    out << YAML::Key << "queries" << YAML::Value << YAML::BeginSeq;
    for (const auto& query : spec.queries) {
      out << YAML::BeginMap;
      WriteVersions(out, query.versions);
      out << YAML::Key << "query" << YAML::Value;
      WriteSql(out, SqlWithPlaceholders(query));
      out << YAML::EndMap;
    }
    out << YAML::EndSeq;
  }
  if (!spec.omitted_rows_column.empty()) {
    out << YAML::Key << "omitted_rows_column" << YAML::Value << spec.omitted_rows_column;
  }
  if (!spec.target_label.empty()) {
    out << YAML::Key << "target_label" << YAML::Value << spec.target_label;
  }
  if (spec.legacy_names) out << YAML::Key << "legacy_names" << YAML::Value << true;
  if (!spec.allow_unsafe.empty()) {
    out << YAML::Key << "allow_unsafe" << YAML::Value << YAML::Flow << spec.allow_unsafe;
  }
  if (!spec.labels.empty()) {
    out << YAML::Key << "labels" << YAML::Value << YAML::BeginSeq;
    for (const auto& label : spec.labels) {
      if (label.name == label.column) {
        out << label.column;
      } else {
        out << YAML::Flow << YAML::BeginMap << YAML::Key << "column" << YAML::Value << label.column
            << YAML::Key << "name" << YAML::Value << label.name << YAML::EndMap;
      }
    }
    out << YAML::EndSeq;
  }
  out << YAML::Key << "values" << YAML::Value << YAML::BeginSeq;
  for (const auto& value : spec.values) WriteValue(out, spec, value);
  out << YAML::EndSeq;
  out << YAML::EndMap;
}

}  // namespace

std::string WriteCollectorFile(const std::vector<CollectorSpec>& collectors) {
  YAML::Emitter out;
  out.SetIndent(2);
  out << YAML::BeginMap;
  out << YAML::Key << "version" << YAML::Value << 1;
  out << YAML::Key << "collectors" << YAML::Value << YAML::BeginSeq;
  for (const auto& spec : collectors) WriteCollector(out, spec);
  out << YAML::EndSeq << YAML::EndMap;
  return std::string(out.c_str()) + "\n";
}

}  // namespace pgtally
