#include "pgtally/cli/check.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <array>
#include <regex>

#include "pgtally/log/logging.h"

namespace pgtally {
namespace {

// pg_type's OIDs of the types whose text form ParsePgNumber reads whole.
constexpr std::array<Oid, 14> kNumericTypes = {
    16,    // bool: t and f
    20,    // int8
    21,    // int2
    23,    // int4
    26,    // oid
    28,    // xid
    29,    // cid
    700,   // float4
    701,   // float8
    1700,  // numeric
    5069,  // xid8
    1082,  // date: Unix seconds, as DateStyle ISO (the default) prints it
    1114,  // timestamp
    1184,  // timestamptz
};

constexpr Oid kPgLsn = 3220;

struct TypeInfo {
  Oid oid;
  const char* name;
  char category;
};

// What pg_type says of the types results usually hold, so that most columns need no lookup.
constexpr std::array<TypeInfo, 27> kBuiltinTypes = {{
    {16, "boolean", 'B'},
    {18, "\"char\"", 'Z'},
    {19, "name", 'S'},
    {20, "bigint", 'N'},
    {21, "smallint", 'N'},
    {23, "integer", 'N'},
    {25, "text", 'S'},
    {26, "oid", 'N'},
    {28, "xid", 'U'},
    {29, "cid", 'U'},
    {114, "json", 'U'},
    {650, "cidr", 'I'},
    {700, "real", 'N'},
    {701, "double precision", 'N'},
    {705, "unknown", 'X'},
    {790, "money", 'N'},
    {869, "inet", 'I'},
    {1042, "character", 'S'},
    {1043, "character varying", 'S'},
    {1082, "date", 'D'},
    {1114, "timestamp without time zone", 'D'},
    {1184, "timestamp with time zone", 'D'},
    {1186, "interval", 'T'},
    {1700, "numeric", 'N'},
    {2950, "uuid", 'U'},
    {3220, "pg_lsn", 'U'},
    {3802, "jsonb", 'U'},
}};

// Whether a label column of this category reads well as a label: strings, enums, network
// addresses and the like. Numbers, booleans, dates and times, arrays and composites work (their
// text form is the label value) but are seldom what was meant.
bool IsTextLike(char category) {
  return category == 0 || std::string_view("SEIUXZ").find(category) != std::string_view::npos;
}

std::string Plural(std::size_t count, std::string_view word) {
  return fmt::format("{} {}{}", count, word, count == 1 ? "" : "s");
}

std::string JsonOrNull(std::string_view text) {
  return text.empty() ? std::string("null") : JsonString(text);
}

std::string JsonOrNull(int number) { return number > 0 ? std::to_string(number) : "null"; }

std::string ColumnList(const std::vector<ResultColumn>& columns) {
  if (columns.empty()) return "it returns no columns";
  std::string list;
  for (const auto& column : columns) list += (list.empty() ? "" : ", ") + column.name;
  return "it returns " + list;
}

}  // namespace

std::string_view ToString(Severity severity) {
  switch (severity) {
    case Severity::kError:
      return "error";
    case Severity::kWarning:
      return "warning";
    case Severity::kNote:
      break;
  }
  return "note";
}

std::vector<Finding> FindingsFromLoadErrors(const std::vector<std::string>& errors) {
  // Diagnostic::ToString's forms: "file:line:column: message", "file:line: message",
  // "file: message" (a file as a whole) and a bare message.
  static const std::regex kWithLine(R"(^([^\n]*?):([0-9]+)(?::([0-9]+))?: ([\s\S]*)$)");
  static const std::regex kWithFile(R"(^([^ \n]*\.(?:ya?ml|json)|[^ \n]*/[^ \n]*): ([\s\S]*)$)");
  static const std::regex kCollector(R"re(^collector "([^"]*)")re");
  std::vector<Finding> findings;
  for (const auto& error : errors) {
    Finding finding;
    std::smatch match;
    if (std::regex_match(error, match, kWithLine)) {
      finding.where = {match[1], std::stoi(match[2]), match[3].matched ? std::stoi(match[3]) : 0};
      finding.message = match[4];
    } else if (std::regex_match(error, match, kWithFile)) {
      finding.where.file = match[1];
      finding.message = match[2];
    } else {
      finding.message = error;
    }
    if (std::regex_search(finding.message, match, kCollector)) finding.collector = match[1];
    findings.push_back(std::move(finding));
  }
  return findings;
}

bool IsNumericType(Oid type) {
  return std::find(kNumericTypes.begin(), kNumericTypes.end(), type) != kNumericTypes.end();
}

std::optional<ResultColumn> BuiltinType(Oid type) {
  for (const auto& info : kBuiltinTypes) {
    if (info.oid == type) return ResultColumn{"", type, info.name, info.category};
  }
  return std::nullopt;
}

std::vector<Finding> CheckColumns(const CollectorSpec& spec,
                                  const std::vector<ResultColumn>& columns) {
  std::vector<Finding> findings;
  const auto add = [&](const SourceLocation& where, Severity severity, std::string message) {
    findings.push_back(
        {where.file.empty() ? spec.location : where, severity, spec.name, std::move(message)});
  };
  const auto find = [&](const std::string& name) -> const ResultColumn* {
    const auto it = std::find_if(columns.begin(), columns.end(),
                                 [&](const ResultColumn& column) { return column.name == name; });
    return it == columns.end() ? nullptr : &*it;
  };
  const auto type_name = [](const ResultColumn& column) {
    return column.type_name.empty() ? fmt::format("type {}", column.type) : column.type_name;
  };

  for (const auto& label : spec.labels) {
    const ResultColumn* column = find(label.column);
    if (!column) {
      add(spec.location, Severity::kError,
          fmt::format("label column \"{}\" is not in the query's result ({})", label.column,
                      ColumnList(columns)));
    } else if (!IsTextLike(column->category)) {
      const bool number = column->category == 'N' || column->category == 'B';
      add(spec.location, Severity::kWarning,
          fmt::format("label column \"{}\" has type {}: {}", label.column, type_name(*column),
                      number ? "numbers work as labels, but a number usually belongs in a value "
                               "column, and every distinct one makes another series"
                             : "its text form becomes the label value; cast it to text in the "
                               "query if that is what you mean"));
    }
  }
  const auto check_number = [&](const std::string& name, const char* role,
                                const SourceLocation& where) {
    const ResultColumn* column = find(name);
    if (!column) {
      add(where, Severity::kError,
          fmt::format("{} \"{}\" is not in the query's result ({})", role, name,
                      ColumnList(columns)));
    } else if (!IsNumericType(column->type)) {
      add(where, Severity::kError,
          fmt::format("{} \"{}\" has type {}, which pgtally does not read as a number; {}", role,
                      name, type_name(*column),
                      column->type == kPgLsn
                          ? fmt::format("make it a number of bytes in the query (for example "
                                        "pg_wal_lsn_diff({}, '0/0'))",
                                        name)
                          : fmt::format("cast it in the query (for example {}::float8)", name)));
    }
  };
  for (const auto& value : spec.values) {
    if (!value.mapping.empty() || value.go_duration) {
      // Read as text: any type will do.
      if (!find(value.column)) check_number(value.column, "value column", value.location);
    } else if (value.kind == MetricKind::kHistogram) {
      for (const std::string& name : {value.column, value.column + "_bucket"}) {
        const ResultColumn* column = find(name);
        if (column && column->category != 'A') {
          add(value.location, Severity::kError,
              fmt::format("histogram column \"{}\" has type {}; it must be an array of numbers",
                          name, type_name(*column)));
        } else if (!column) {
          check_number(name, "histogram column", value.location);
        }
      }
      check_number(value.column + "_sum", "histogram column", value.location);
      check_number(value.column + "_count", "histogram column", value.location);
    } else {
      check_number(value.column, "value column", value.location);
    }
  }
  if (!spec.omitted_rows_column.empty()) {
    check_number(spec.omitted_rows_column, "omitted_rows_column", spec.location);
  }

  std::vector<std::string> unused;
  for (const auto& column : columns) {
    const bool used =
        column.name == spec.omitted_rows_column ||
        std::any_of(spec.labels.begin(), spec.labels.end(),
                    [&](const LabelSpec& label) { return label.column == column.name; }) ||
        std::any_of(spec.values.begin(), spec.values.end(), [&](const ValueSpec& value) {
          return value.column == column.name ||
                 (value.kind == MetricKind::kHistogram &&
                  (column.name == value.column + "_bucket" ||
                   column.name == value.column + "_sum" || column.name == value.column + "_count"));
        });
    if (!used) unused.push_back(fmt::format("\"{}\"", column.name));
  }
  if (!unused.empty()) {
    add(spec.location, Severity::kNote,
        unused.size() == 1
            ? fmt::format("column {} is neither a label nor a value and is ignored", unused[0])
            : fmt::format("columns {} are neither labels nor values and are ignored",
                          fmt::join(unused, ", ")));
  }
  return findings;
}

bool IsUnavailableError(std::string_view sqlstate) {
  static constexpr std::array<std::string_view, 7> kUnavailable = {
      "42P01",  // undefined_table: a view or table (of an extension) that is not there
      "42883",  // undefined_function
      "42704",  // undefined_object: a type, say
      "3F000",  // invalid_schema_name
      "42501",  // insufficient_privilege
      "58P01",  // undefined_file: an extension's library is missing
      "55000",  // object_not_in_prerequisite_state: say, a library not in
                // shared_preload_libraries
  };
  return std::find(kUnavailable.begin(), kUnavailable.end(), sqlstate) != kUnavailable.end();
}

std::string PositionInQuery(std::string_view sql, int position) {
  const auto at = FindSqlPosition(sql, position);
  return at ? fmt::format("line {}, column {}", at->line, at->column) : "";
}

std::string FormatFindingsText(const std::vector<Finding>& findings, const CheckSummary& summary) {
  std::string out;
  std::size_t counts[3] = {0, 0, 0};
  for (const auto& finding : findings) {
    ++counts[static_cast<int>(finding.severity)];
    if (!finding.where.file.empty()) out += finding.where.ToString() + ": ";
    out += fmt::format("{}: ", ToString(finding.severity));
    if (!finding.collector.empty() && !finding.message.starts_with("collector \"")) {
      out += fmt::format("collector \"{}\": ", finding.collector);
    }
    // One line per finding, whatever the server's message holds (libpq's end in "\n\tHINT").
    out += std::regex_replace(finding.message, std::regex(R"(\s*\n\s*)"), " ") + "\n";
  }
  out += fmt::format("checked {} {}: {}, {}, {}\n", Plural(summary.collectors, "collector"),
                     !summary.server.empty() ? "against " + summary.server
                     : summary.database_attempted
                         ? std::string("without its queries (the database could not be reached)")
                         : "without a database (give --dsn to check the "
                           "queries too)",
                     Plural(counts[0], "error"), Plural(counts[1], "warning"),
                     Plural(counts[2], "note"));
  return out;
}

std::string FormatFindingsJson(const std::vector<Finding>& findings, const CheckSummary& summary) {
  std::string out = "{\"findings\": [";
  std::size_t counts[3] = {0, 0, 0};
  for (const auto& finding : findings) {
    ++counts[static_cast<int>(finding.severity)];
    out += fmt::format(
        "{}\n  {{\"file\": {}, \"line\": {}, \"column\": {}, \"severity\": {}, \"collector\": {}, "
        "\"message\": {}}}",
        &finding == &findings.front() ? "" : ",", JsonOrNull(finding.where.file),
        JsonOrNull(finding.where.line), JsonOrNull(finding.where.column),
        JsonString(ToString(finding.severity)), JsonOrNull(finding.collector),
        JsonString(finding.message));
  }
  out += fmt::format(
      "{}],\n \"summary\": {{\"collectors\": {}, \"server\": {}, \"server_version\": {}, "
      "\"errors\": {}, \"warnings\": {}, \"notes\": {}}}}}\n",
      findings.empty() ? "" : "\n", summary.collectors, JsonOrNull(summary.server),
      JsonOrNull(summary.server_version), counts[0], counts[1], counts[2]);
  return out;
}

}  // namespace pgtally
