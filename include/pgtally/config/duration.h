#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace pgtally {

using Millis = std::chrono::milliseconds;

// Parses "500ms", "5s", "2m", "1h", "1.5s" or a plain number of seconds ("10", "0.25").
// Returns nullopt for anything else, including negative durations.
std::optional<Millis> ParseDuration(std::string_view text);

// The shortest exact spelling of a duration: "500ms", "5s", "2m".
std::string FormatDuration(Millis duration);

}  // namespace pgtally
