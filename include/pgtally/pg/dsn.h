#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace pgtally::pg {

// Helpers for libpq connection strings, in either form: a postgresql:// URI or key=value pairs.

// The string with its password replaced by "xxxxx", safe to log or show. Works on the text
// itself, so it keeps the user's spelling; a string libpq cannot parse is not shown at all.
std::string RedactDsn(std::string_view dsn);

// The value of one keyword (such as "dbname") the string sets, if it sets it to something.
std::optional<std::string> DsnValue(std::string_view dsn, std::string_view keyword);

// The password a connection string carries, if any, so other text can be scrubbed of it.
inline std::optional<std::string> DsnPassword(std::string_view dsn) {
  return DsnValue(dsn, "password");
}

// Whether the string points at PgBouncer's admin console (dbname=pgbouncer).
inline bool IsPgBouncerConsole(std::string_view dsn) {
  return DsnValue(dsn, "dbname") == "pgbouncer";
}

// libpq's complaint about the string, or nullopt when it parses. The message is redacted.
std::optional<std::string> DsnError(std::string_view dsn);

}  // namespace pgtally::pg
