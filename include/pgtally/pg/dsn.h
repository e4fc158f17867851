#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace pgtally::pg {

// Helpers for libpq connection strings, in either form: a postgresql:// URI or key=value pairs.

// The string with its password replaced by "xxxxx", safe to log or show. Works on the text
// itself, so it keeps the user's spelling; a string libpq cannot parse is not shown at all.
std::string RedactDsn(std::string_view dsn);

// The password a connection string carries, if any, so other text can be scrubbed of it.
std::optional<std::string> DsnPassword(std::string_view dsn);

// libpq's complaint about the string, or nullopt when it parses. The message is redacted.
std::optional<std::string> DsnError(std::string_view dsn);

}  // namespace pgtally::pg
