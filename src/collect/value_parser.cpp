#include "pgtally/collect/value_parser.h"

#include <charconv>
#include <cmath>
#include <limits>

namespace pgtally {
namespace {

// Reads exactly `digits` decimal digits at `at`, advancing it.
std::optional<int> Digits(std::string_view text, std::size_t& at, std::size_t digits) {
  if (at + digits > text.size()) return std::nullopt;
  int value = 0;
  for (std::size_t i = 0; i < digits; ++i) {
    const char c = text[at + i];
    if (c < '0' || c > '9') return std::nullopt;
    value = value * 10 + (c - '0');
  }
  at += digits;
  return value;
}

// Days from 1970-01-01 to a date of the proleptic Gregorian calendar (Howard Hinnant's method).
long long DaysFromCivil(int year, int month, int day) {
  year -= month <= 2 ? 1 : 0;
  const int era = (year >= 0 ? year : year - 399) / 400;
  const int year_of_era = year - era * 400;
  const int day_of_year = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1;
  const int day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
  return static_cast<long long>(era) * 146097 + day_of_era - 719468;
}

// "YYYY-MM-DD[ HH:MM:SS[.ffffff][+HH[:MM[:SS]]]]", as DateStyle ISO prints dates and
// timestamps, in Unix seconds.
std::optional<double> ParseIsoTimestamp(std::string_view text) {
  if (text == "infinity") return std::numeric_limits<double>::infinity();
  if (text == "-infinity") return -std::numeric_limits<double>::infinity();
  std::size_t at = 0;
  const auto year = Digits(text, at, 4);
  if (!year || at >= text.size() || text[at++] != '-') return std::nullopt;
  const auto month = Digits(text, at, 2);
  if (!month || at >= text.size() || text[at++] != '-') return std::nullopt;
  const auto day = Digits(text, at, 2);
  if (!day || *month < 1 || *month > 12 || *day < 1 || *day > 31) return std::nullopt;
  double seconds = static_cast<double>(DaysFromCivil(*year, *month, *day)) * 86400;
  if (at == text.size()) return seconds;
  if (text[at++] != ' ') return std::nullopt;
  const auto hour = Digits(text, at, 2);
  if (!hour || at >= text.size() || text[at++] != ':') return std::nullopt;
  const auto minute = Digits(text, at, 2);
  if (!minute || at >= text.size() || text[at++] != ':') return std::nullopt;
  const auto second = Digits(text, at, 2);
  if (!second) return std::nullopt;
  seconds += *hour * 3600 + *minute * 60 + *second;
  if (at < text.size() && text[at] == '.') {
    double scale = 0.1;
    for (++at; at < text.size() && text[at] >= '0' && text[at] <= '9'; ++at, scale /= 10) {
      seconds += (text[at] - '0') * scale;
    }
  }
  if (at < text.size() && (text[at] == '+' || text[at] == '-')) {
    const int sign = text[at++] == '+' ? 1 : -1;
    int offset = 0;
    for (const int unit : {3600, 60, 1}) {
      const auto part = Digits(text, at, 2);
      if (!part) return std::nullopt;
      offset += *part * unit;
      if (at == text.size() || text[at] != ':') break;
      ++at;
    }
    seconds -= sign * offset;
  }
  if (at != text.size()) return std::nullopt;
  return seconds;
}

}  // namespace

std::optional<double> ParsePgNumber(std::string_view text) {
  if (text == "t" || text == "true") return 1.0;
  if (text == "f" || text == "false") return 0.0;
  // from_chars would also take "inf" or "nan" spelled in any case; PostgreSQL prints exactly these.
  if (text == "NaN") return std::numeric_limits<double>::quiet_NaN();
  if (text == "Infinity") return std::numeric_limits<double>::infinity();
  if (text == "-Infinity") return -std::numeric_limits<double>::infinity();
  if (text.empty() || !(text.front() == '-' || (text.front() >= '0' && text.front() <= '9') ||
                        text.front() == '.')) {
    return text.ends_with("infinity") ? ParseIsoTimestamp(text) : std::nullopt;
  }
  double value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec == std::errc() && end == text.data() + text.size()) return value;
  // "2026-11-23..." reads as the number 2026 followed by more: a date, perhaps.
  if (end == text.data() + 4 && text[4] == '-') return ParseIsoTimestamp(text);
  return std::nullopt;
}

std::optional<double> ParseGoDuration(std::string_view text) {
  if (text == "0") return 0.0;
  double sign = 1;
  if (!text.empty() && (text.front() == '-' || text.front() == '+')) {
    sign = text.front() == '-' ? -1 : 1;
    text.remove_prefix(1);
  }
  if (text.empty()) return std::nullopt;
  constexpr std::pair<std::string_view, double> kUnits[] = {
      {"ns", 1e-6}, {"us", 1e-3}, {"\u00b5s", 1e-3}, {"\u03bcs", 1e-3},
      {"ms", 1.0},  {"s", 1e3},   {"m", 6e4},        {"h", 3.6e6}};
  double total = 0;
  while (!text.empty()) {
    double number = 0;
    const auto [end, ec] =
        std::from_chars(text.data(), text.data() + text.size(), number, std::chars_format::fixed);
    if (ec != std::errc() || text.front() == '-' || text.front() == '+') return std::nullopt;
    text.remove_prefix(static_cast<std::size_t>(end - text.data()));
    std::optional<double> unit;
    std::size_t longest = 0;
    for (const auto& [name, millis] : kUnits) {
      if (text.starts_with(name) && name.size() > longest) {
        unit = millis;
        longest = name.size();
      }
    }
    if (!unit) return std::nullopt;
    total += number * *unit;
    text.remove_prefix(longest);
  }
  return sign * total;
}

std::optional<std::vector<std::optional<std::string>>> ParsePgArray(std::string_view text) {
  if (text.size() < 2 || text.front() != '{' || text.back() != '}') return std::nullopt;
  text = text.substr(1, text.size() - 2);
  std::vector<std::optional<std::string>> elements;
  if (text.empty()) return elements;
  std::size_t at = 0;
  while (true) {
    std::string element;
    bool quoted = false;
    if (at < text.size() && text[at] == '"') {
      quoted = true;
      for (++at; at < text.size() && text[at] != '"'; ++at) {
        if (text[at] == '\\' && at + 1 < text.size()) ++at;
        element += text[at];
      }
      if (at++ >= text.size()) return std::nullopt;  // no closing quote
    } else {
      const auto comma = std::min(text.find(',', at), text.size());
      element = text.substr(at, comma - at);
      if (element.find_first_of("{}\"") != std::string::npos) return std::nullopt;
      at = comma;
    }
    if (!quoted && element == "NULL") {
      elements.emplace_back(std::nullopt);
    } else {
      elements.emplace_back(std::move(element));
    }
    if (at == text.size()) return elements;
    if (text[at++] != ',') return std::nullopt;
  }
}

std::string SanitizeUtf8(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  std::size_t i = 0;
  while (i < text.size()) {
    const auto byte = static_cast<unsigned char>(text[i]);
    std::size_t length = 0;
    char32_t min = 0;
    if (byte < 0x80) {
      out.push_back(text[i++]);
      continue;
    } else if ((byte & 0xE0) == 0xC0) {
      length = 2;
      min = 0x80;
    } else if ((byte & 0xF0) == 0xE0) {
      length = 3;
      min = 0x800;
    } else if ((byte & 0xF8) == 0xF0) {
      length = 4;
      min = 0x10000;
    }
    bool valid = length != 0 && i + length <= text.size();
    char32_t code = valid ? byte & (0xFF >> (length + 1)) : 0;
    for (std::size_t k = 1; valid && k < length; ++k) {
      const auto next = static_cast<unsigned char>(text[i + k]);
      valid = (next & 0xC0) == 0x80;
      code = (code << 6) | (next & 0x3F);
    }
    // Overlong forms, surrogates and values past U+10FFFF are invalid too.
    valid = valid && code >= min && code <= 0x10FFFF && !(code >= 0xD800 && code <= 0xDFFF);
    if (valid) {
      out.append(text.substr(i, length));
      i += length;
    } else {
      out.append("\xEF\xBF\xBD");
      ++i;
    }
  }
  return out;
}

std::string EscapeHelp(std::string_view help) {
  std::string out;
  out.reserve(help.size());
  for (const char c : help) {
    if (c == '\\') {
      out.append("\\\\");
    } else if (c == '\n') {
      out.append("\\n");
    } else {
      out.push_back(c);
    }
  }
  return out;
}

}  // namespace pgtally
