#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace pgtally {

// Parses a value as PostgreSQL prints it in text form: integers, numeric and float values
// (including NaN, Infinity and -Infinity) and booleans (t/f, true/false). Anything else,
// including surrounding spaces, is nullopt.
std::optional<double> ParsePgNumber(std::string_view text);

// The text with every invalid UTF-8 sequence replaced by U+FFFD, so a label value read from a
// SQL_ASCII database cannot make the exposition unparseable.
std::string SanitizeUtf8(std::string_view text);

// Escapes a HELP text for the text exposition format (backslash and newline).
std::string EscapeHelp(std::string_view help);

}  // namespace pgtally
