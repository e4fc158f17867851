#include "promql.h"

#include <cctype>

namespace pgtally::testing {
namespace {

bool IsNameStart(char c) {
  return std::isalpha(static_cast<unsigned char>(c)) != 0 || c == '_' || c == ':';
}
bool IsNameChar(char c) { return IsNameStart(c) || std::isdigit(static_cast<unsigned char>(c)); }

// Words that are never metric names where they appear without a following '(': operators and
// aggregations, which may be followed by a by/without clause before their '('.
const std::set<std::string, std::less<>> kKeywords = {
    "and",   "or",     "unless", "bool", "offset",  "inf",          "nan",     "Inf",
    "NaN",   "start",  "end",    "sum",  "min",     "max",          "avg",     "group",
    "count", "stddev", "stdvar", "topk", "bottomk", "count_values", "quantile"};
// Words whose parenthesised list holds label names.
const std::set<std::string, std::less<>> kLabelLists = {"by",       "without",    "on",
                                                        "ignoring", "group_left", "group_right"};

// The index just past the string literal opening at `at` (quote included).
std::size_t SkipString(std::string_view text, std::size_t at) {
  const char quote = text[at];
  std::size_t i = at + 1;
  while (i < text.size() && text[i] != quote) i += (text[i] == '\\' && quote != '`') ? 2 : 1;
  return i + 1;
}

// The index just past the bracket closing the one opening at `at`, strings skipped.
std::size_t SkipBalanced(std::string_view text, std::size_t at, char open, char close) {
  int depth = 0;
  for (std::size_t i = at; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '"' || c == '\'' || c == '`') {
      i = SkipString(text, i) - 1;
    } else if (c == open) {
      ++depth;
    } else if (c == close && --depth == 0) {
      return i + 1;
    }
  }
  return text.size();
}

std::size_t SkipSpace(std::string_view text, std::size_t i) {
  while (i < text.size() && std::isspace(static_cast<unsigned char>(text[i]))) ++i;
  return i;
}

}  // namespace

std::set<std::string> PromqlMetricNames(std::string_view expr) {
  std::set<std::string> names;
  std::size_t i = 0;
  while (i < expr.size()) {
    const char c = expr[i];
    if (c == '"' || c == '\'' || c == '`') {
      i = SkipString(expr, i);
    } else if (c == '{') {
      i = SkipBalanced(expr, i, '{', '}');
    } else if (c == '[') {
      i = SkipBalanced(expr, i, '[', ']');
    } else if (c == '$') {
      ++i;
      if (i < expr.size() && expr[i] == '{') {
        i = SkipBalanced(expr, i, '{', '}');
      } else {
        while (i < expr.size() && IsNameChar(expr[i])) ++i;
      }
    } else if (std::isdigit(static_cast<unsigned char>(c)) || c == '.') {
      while (i < expr.size() && (IsNameChar(expr[i]) || expr[i] == '.')) ++i;
    } else if (IsNameStart(c)) {
      const std::size_t start = i;
      while (i < expr.size() && IsNameChar(expr[i])) ++i;
      const std::string word(expr.substr(start, i - start));
      const std::size_t next = SkipSpace(expr, i);
      const bool call = next < expr.size() && expr[next] == '(';
      if (kLabelLists.contains(word)) {
        if (call) i = SkipBalanced(expr, next, '(', ')');
      } else if (!call && !kKeywords.contains(word)) {
        names.insert(word);
      }
    } else {
      ++i;
    }
  }
  return names;
}

std::string ExpandGrafanaVariables(std::string_view expr,
                                   const std::map<std::string, std::string>& values) {
  std::string out;
  std::size_t i = 0;
  while (i < expr.size()) {
    std::string name;
    std::size_t end = i;
    if (expr[i] == '$' && i + 1 < expr.size() && expr[i + 1] == '{') {
      end = expr.find('}', i);
      if (end != std::string_view::npos) {
        name = std::string(expr.substr(i + 2, end - i - 2));
        name = name.substr(0, name.find(':'));  // ${name:format}
        ++end;
      }
    } else if (expr[i] == '$') {
      end = i + 1;
      while (end < expr.size() && IsNameChar(expr[end]) && expr[end] != ':') ++end;
      name = std::string(expr.substr(i + 1, end - i - 1));
    } else if (expr.substr(i, 2) == "[[") {
      end = expr.find("]]", i);
      if (end != std::string_view::npos) {
        name = std::string(expr.substr(i + 2, end - i - 2));
        end += 2;
      }
    }
    if (const auto it = values.find(name); !name.empty() && it != values.end()) {
      out += it->second;
      i = end;
    } else {
      out += expr[i++];
    }
  }
  return out;
}

}  // namespace pgtally::testing
