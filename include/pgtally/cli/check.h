#pragma once

#include <libpq-fe.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "pgtally/config/collector_spec.h"
#include "pgtally/config/diagnostic.h"

namespace pgtally {

// The pieces of `pgtally check` that need no database: turning load errors and result columns
// into findings, and printing them. The command itself (src/cli/check_command.cpp) connects,
// describes each collector's query and feeds the columns to CheckColumns.

enum class Severity {
  kError,    // the collector fails at scrape time, or the files do not load: exit code 1
  kWarning,  // works, but probably not as meant
  kNote,     // for information: skipped on this server, ignored columns
};

std::string_view ToString(Severity severity);

struct Finding {
  SourceLocation where;  // file empty when the finding is about no file (say, the database)
  Severity severity = Severity::kError;
  std::string collector;  // empty when about no collector in particular
  std::string message;
};

// One finding per problem LoadSetup reported ("file:line:column: message", the parts before the
// message optional), all errors. A message that starts with `collector "NAME"` names the
// collector; the message itself is kept as it is, so check says what start-up says.
std::vector<Finding> FindingsFromLoadErrors(const std::vector<std::string>& errors);

// A result column as the server describes it. `category` is pg_type.typcategory ('S' string,
// 'N' numeric, ...), 0 when unknown; `type_name` is how the server names the type.
struct ResultColumn {
  std::string name;
  Oid type = 0;
  std::string type_name;
  char category = 0;
};

// Whether ParsePgNumber reads every value of a column of this type: the integer, float and
// numeric types, oid, xid and friends, and bool.
bool IsNumericType(Oid type);
// The name and category of the built-in types a result column usually has; nullopt for others
// (look them up in pg_type).
std::optional<ResultColumn> BuiltinType(Oid type);

// What is wrong with `columns` as the result of `spec`'s query: a missing label, value or
// omitted_rows column, or a value column pgtally cannot read as a number (errors); a label
// column whose type is not text-like (a warning); a column the collector does not use (a note).
std::vector<Finding> CheckColumns(const CollectorSpec& spec,
                                  const std::vector<ResultColumn>& columns);

// Whether a server error (by SQLSTATE) means that what the query needs is absent here, not that
// the query is wrong: a missing table, view, function, schema, extension object or privilege.
// An optional collector failing so is skipped by the exporter; check says so in a note.
bool IsUnavailableError(std::string_view sqlstate);

// "line L, column C" of the 1-based character `position` (as PostgreSQL counts them: UTF-8
// characters) in `sql`; empty when the position is 0 or further than just past the end.
std::string PositionInQuery(std::string_view sql, int position);

struct CheckSummary {
  std::size_t collectors = 0;
  std::string server;  // "PostgreSQL 15.4"; empty when no database was checked
  int server_version = 0;
  bool database_attempted = false;  // a database was named, but could not be checked
};

// One line per finding, `file:line:column: severity: collector "x": message`, then a summary
// line such as `checked 42 collectors against PostgreSQL 15.4: 2 errors, 1 warning, 3 notes`.
std::string FormatFindingsText(const std::vector<Finding>& findings, const CheckSummary& summary);
// The same as one JSON document: {"findings": [{file, line, column, severity, collector,
// message}, ...], "summary": {collectors, server, server_version, errors, warnings, notes}}.
// Unknown file, line, column or collector are null.
std::string FormatFindingsJson(const std::vector<Finding>& findings, const CheckSummary& summary);

}  // namespace pgtally
