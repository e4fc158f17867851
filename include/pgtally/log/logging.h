#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "pgtally/config/exporter_config.h"

namespace pgtally {

// Logging goes through spdlog to stderr, one event per line in logfmt or JSON. Messages are
// written as `what happened: key=value key=value`; values that may hold spaces or quotes go
// through Quoted(). Every registered secret is masked in every line before it is written.

// Sets up the default logger. Returns an error message for an unknown level.
std::optional<std::string> SetupLogging(std::string_view level, LogFormat format);
// Changes the level of that logger; safe while other threads log (SetupLogging is not).
std::optional<std::string> SetLogLevel(std::string_view level);

// Masks `secret` (for example the DSN's password) in every later log line and in ScrubSecrets.
void AddSecret(std::string secret);
std::string ScrubSecrets(std::string_view text);

// `text` as a logfmt value: in double quotes, with backslash, quote and newline escaped.
std::string Quoted(std::string_view text);
// `text` as a JSON string: in double quotes, with quote, backslash and control characters
// escaped. The bytes are copied as they are, so UTF-8 stays UTF-8.
std::string JsonString(std::string_view text);

// Formats one event; exposed for tests. `message` is `what happened: key=value ...`.
std::string FormatLogLine(std::string_view timestamp, std::string_view level,
                          std::string_view message, LogFormat format);

}  // namespace pgtally
