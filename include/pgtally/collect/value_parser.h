#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace pgtally {

// Parses a value as PostgreSQL prints it in text form: integers, numeric and float values
// (including NaN, Infinity and -Infinity), booleans (t/f, true/false), and dates and timestamps
// in the ISO style as Unix seconds (a timestamp without time zone taken as UTC). Anything else,
// including surrounding spaces, is nullopt.
std::optional<double> ParsePgNumber(std::string_view text);

// A Go duration ("1h2m3.5s", "300ms", "-1.5h"; units ns, us, ms, s, m, h) in milliseconds.
std::optional<double> ParseGoDuration(std::string_view text);

// The elements of a one-dimensional PostgreSQL array as printed in text form ("{1,2.5,NULL}");
// a NULL element is nullopt. Quoted elements are unquoted. nullopt for anything else.
std::optional<std::vector<std::optional<std::string>>> ParsePgArray(std::string_view text);

// The text with every invalid UTF-8 sequence replaced by U+FFFD, so a label value read from a
// SQL_ASCII database cannot make the exposition unparseable.
std::string SanitizeUtf8(std::string_view text);

// Escapes a HELP text for the text exposition format (backslash and newline).
std::string EscapeHelp(std::string_view help);

}  // namespace pgtally
