#include "pgtally/config/duration.h"

#include <charconv>
#include <cmath>

namespace pgtally {

std::optional<Millis> ParseDuration(std::string_view text) {
  struct Unit {
    std::string_view suffix;
    double millis;
  };
  // "ms" must be tried before "s" and "m".
  static constexpr Unit kUnits[] = {{"ms", 1}, {"s", 1e3}, {"m", 60e3}, {"h", 3600e3}};
  double per_unit = 1e3;  // a bare number is seconds
  for (const auto& unit : kUnits) {
    if (text.size() > unit.suffix.size() && text.ends_with(unit.suffix)) {
      text.remove_suffix(unit.suffix.size());
      per_unit = unit.millis;
      break;
    }
  }
  double number = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), number);
  if (ec != std::errc() || end != text.data() + text.size() || !std::isfinite(number) ||
      number < 0 || number * per_unit > 1e15) {
    return std::nullopt;
  }
  return Millis(static_cast<Millis::rep>(std::llround(number * per_unit)));
}

std::string FormatDuration(Millis duration) {
  const auto ms = duration.count();
  if (ms != 0 && ms % 3600000 == 0) return std::to_string(ms / 3600000) + "h";
  if (ms != 0 && ms % 60000 == 0) return std::to_string(ms / 60000) + "m";
  if (ms % 1000 == 0) return std::to_string(ms / 1000) + "s";
  return std::to_string(ms) + "ms";
}

}  // namespace pgtally
