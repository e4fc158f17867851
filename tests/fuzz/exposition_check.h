#pragma once

// An in-process check of the Prometheus text exposition format 0.0.4, strict where pgtally's
// output must be: what `promtool check metrics` rejects, and what makes Prometheus keep one of
// two values at random. The fuzz targets run it on every exposition they build (promtool per
// input would be far too slow); a unit test holds it against the real promtool.

#include <cstdlib>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace pgtally::fuzz {

inline bool IsMetricNameChar(char c, bool first) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
         (!first && c >= '0' && c <= '9');
}

inline bool IsValidName(std::string_view name, bool label) {
  if (name.empty()) return false;
  for (std::size_t i = 0; i < name.size(); ++i) {
    if (!IsMetricNameChar(name[i], i == 0) || (label && name[i] == ':')) return false;
  }
  return true;
}

inline bool ParseNumber(std::string_view text, double& value) {
  if (text.empty()) return false;
  const std::string copy(text);
  char* end = nullptr;
  value = std::strtod(copy.c_str(), &end);
  return end == copy.c_str() + copy.size();
}

// Why `text` is not a valid exposition, or "" when it is.
class ExpositionChecker {
 public:
  std::string Check(std::string_view text) {
    if (!text.empty() && !text.ends_with('\n')) return "the last line has no newline";
    std::size_t start = 0;
    while (start < text.size()) {
      const auto end = text.find('\n', start);
      const std::string_view line = text.substr(start, end - start);
      if (auto problem = Line(line); !problem.empty()) {
        return problem + " in line \"" + std::string(line) + "\"";
      }
      start = end + 1;
    }
    return EndFamily();
  }

 private:
  struct Histogram {
    bool has_inf = false;
    double inf = 0;
    bool has_count = false;
    double count = 0;
    double last_le = -1e308;
    double last_bucket = 0;
  };
  struct Family {
    std::string type = "untyped";
    bool help = false;
    bool typed = false;
    bool samples = false;
  };

  std::string Line(std::string_view line) {
    if (line.empty()) return "an empty line";
    if (line.starts_with("# HELP ") || line.starts_with("# TYPE ")) return Header(line);
    if (line.starts_with('#')) return "";
    return Sample(line);
  }

  std::string Header(std::string_view line) {
    const bool help = line[2] == 'H';
    std::string_view rest = line.substr(7);
    const auto space = rest.find(' ');
    const std::string name(rest.substr(0, space));
    const std::string_view argument =
        space == std::string_view::npos ? std::string_view() : rest.substr(space + 1);
    if (!IsValidName(name, false)) return "an invalid metric name";
    if (name != current_) {
      if (auto problem = StartFamily(name); !problem.empty()) return problem;
    }
    Family& family = families_[name];
    if (help) {
      if (family.help) return "a second HELP";
      family.help = true;
      for (std::size_t i = 0; i < argument.size(); ++i) {
        if (argument[i] == '\\' &&
            (i + 1 == argument.size() || (argument[i + 1] != '\\' && argument[i + 1] != 'n'))) {
          return "an invalid escape in HELP";
        }
        if (argument[i] == '\\') ++i;
      }
      return "";
    }
    if (family.typed) return "a second TYPE";
    if (family.samples) return "TYPE after the family's samples";
    static const std::set<std::string_view> kTypes = {"counter", "gauge", "histogram", "summary",
                                                      "untyped"};
    if (!kTypes.contains(argument)) return "an unknown type";
    family.typed = true;
    family.type = std::string(argument);
    return Claim(name, family.type);
  }

  // The sample names a family of `type` writes are its own: no other family may have them.
  std::string Claim(const std::string& name, const std::string& type) {
    std::vector<std::string> names = {name};
    if (type == "histogram") names.push_back(name + "_bucket");
    if (type == "histogram" || type == "summary") {
      names.push_back(name + "_sum");
      names.push_back(name + "_count");
    }
    for (const auto& sample : names) {
      const auto [it, fresh] = owner_.emplace(sample, name);
      if (!fresh && it->second != name) {
        return "family \"" + name + "\" would write \"" + sample + "\", which is family \"" +
               it->second + "\"'s";
      }
      if (sample != name && families_.contains(sample)) {
        return "family \"" + name + "\" would write \"" + sample + "\", a family of its own";
      }
    }
    return "";
  }

  std::string StartFamily(const std::string& name) {
    if (auto problem = EndFamily(); !problem.empty()) return problem;
    if (families_.contains(name)) return "family \"" + name + "\" appears twice";
    if (const auto it = owner_.find(name); it != owner_.end() && it->second != name) {
      return "family \"" + name + "\" is a series name of family \"" + it->second + "\"";
    }
    families_[name];
    current_ = name;
    return "";
  }

  std::string EndFamily() {
    for (const auto& [labels, histogram] : histograms_) {
      if (!histogram.has_inf) return "histogram \"" + current_ + "\" lacks its +Inf bucket";
      if (!histogram.has_count || histogram.count != histogram.inf) {
        return "histogram \"" + current_ + "\"'s _count is not its +Inf bucket";
      }
    }
    histograms_.clear();
    return "";
  }

  std::string Sample(std::string_view line) {
    std::size_t i = 0;
    while (i < line.size() && IsMetricNameChar(line[i], i == 0)) ++i;
    const std::string name(line.substr(0, i));
    if (name.empty()) return "an invalid metric name";
    std::map<std::string, std::string> labels;
    if (i < line.size() && line[i] == '{') {
      if (auto problem = Labels(line, ++i, labels); !problem.empty()) return problem;
    }
    if (i >= line.size() || line[i] != ' ') return "no space before the value";
    std::string_view rest = line.substr(i + 1);
    const auto space = rest.find(' ');
    double value = 0;
    double timestamp = 0;
    if (!ParseNumber(rest.substr(0, space), value)) return "an invalid value";
    if (space != std::string_view::npos && !ParseNumber(rest.substr(space + 1), timestamp)) {
      return "an invalid timestamp";
    }

    const auto owner = owner_.find(name);
    const std::string family_name = owner == owner_.end() ? name : owner->second;
    if (family_name != current_) {
      if (auto problem = StartFamily(family_name); !problem.empty()) return problem;
      if (owner == owner_.end()) owner_.emplace(name, name);
    }
    Family& family = families_[family_name];
    family.samples = true;
    std::string key = name;
    for (const auto& [label, label_value] : labels) key += "\x1f" + label + "=" + label_value;
    if (!series_.insert(key).second) return "a series written twice";
    if (family.type == "histogram") return HistogramSample(name, labels, value);
    if (family.type == "summary") return "";
    if (name != family_name) return "a sample named unlike its family";
    return "";
  }

  std::string HistogramSample(const std::string& name, std::map<std::string, std::string> labels,
                              double value) {
    const auto le = labels.find("le");
    const bool bucket = name == current_ + "_bucket";
    if (bucket != (le != labels.end())) {
      return "a histogram sample with le where it does not belong";
    }
    std::string group;
    double bound = 0;
    bool inf = false;
    if (bucket) {
      if (!ParseNumber(le->second, bound)) return "an invalid le";
      inf = le->second == "+Inf";
      labels.erase(le);
    }
    for (const auto& [label, label_value] : labels) group += label + "=" + label_value + ",";
    Histogram& histogram = histograms_[group];
    if (bucket) {
      if (histogram.has_inf || bound <= histogram.last_le) return "buckets out of order";
      if (value < histogram.last_bucket) return "a bucket below the one before";
      histogram.last_le = bound;
      histogram.last_bucket = value;
      if (inf) {
        histogram.has_inf = true;
        histogram.inf = value;
      }
    } else if (name == current_ + "_count") {
      histogram.has_count = true;
      histogram.count = value;
    } else if (name != current_ + "_sum") {
      return "a histogram sample that is not _bucket, _sum or _count";
    }
    return "";
  }

  static std::string Labels(std::string_view line, std::size_t& i,
                            std::map<std::string, std::string>& labels) {
    while (i < line.size() && line[i] != '}') {
      const auto equals = line.find('=', i);
      if (equals == std::string_view::npos) return "a label without a value";
      const std::string label(line.substr(i, equals - i));
      if (!IsValidName(label, true)) return "an invalid label name";
      if (equals + 1 >= line.size() || line[equals + 1] != '"') return "an unquoted label value";
      std::string value;
      std::size_t j = equals + 2;
      for (; j < line.size() && line[j] != '"'; ++j) {
        if (line[j] == '\\') {
          if (j + 1 >= line.size()) return "an escape at the end";
          const char escaped = line[++j];
          if (escaped != '\\' && escaped != '"' && escaped != 'n') return "an invalid escape";
          value += escaped == 'n' ? '\n' : escaped;
        } else {
          value += line[j];
        }
      }
      if (j >= line.size()) return "an unterminated label value";
      if (!labels.emplace(label, value).second) return "a label named twice";
      i = j + 1;
      if (i < line.size() && line[i] == ',') ++i;
    }
    if (i >= line.size()) return "no closing brace";
    ++i;
    return "";
  }

  std::map<std::string, Family> families_;
  std::map<std::string, std::string> owner_;  // sample name -> its family
  std::set<std::string> series_;
  std::map<std::string, Histogram> histograms_;  // of the current family, by labels without le
  std::string current_;
};

inline std::string ExpositionProblem(std::string_view text) {
  return ExpositionChecker().Check(text);
}

}  // namespace pgtally::fuzz
