#include "pgtally/collect/exposition.h"

#include <fmt/format.h>
#include <prometheus/text_serializer.h>

#include <cmath>
#include <iterator>
#include <sstream>

namespace pgtally {

// TextSerializer's escaping of label values: backslash, double quote and newline.
void AppendLabelValue(const std::string& value, std::string& out) {
  std::size_t start = 0;
  for (std::size_t i = 0; i < value.size(); ++i) {
    const char c = value[i];
    if (c != '\\' && c != '"' && c != '\n') continue;
    out.append(value, start, i - start);
    out += '\\';
    out += c == '\n' ? 'n' : c;
    start = i + 1;
  }
  out.append(value, start, std::string::npos);
}

// TextSerializer's numbers: an ostream in the classic locale with precision 16 writes what
// printf's %.16g does; NaN and infinities are spelled out.
void AppendSampleValue(double value, std::string& out) {
  if (std::isnan(value)) {
    out += "Nan";
  } else if (std::isinf(value)) {
    out += value < 0 ? "-Inf" : "+Inf";
  } else if (value == std::trunc(value) && std::fabs(value) < 1e15 && value != 0) {
    // Whole numbers, most samples: %.16g prints them as integers below 1e16.
    out += fmt::format_int(static_cast<long long>(value)).str();
  } else if (value == 0) {
    out += std::signbit(value) ? "-0" : "0";
  } else {
    fmt::format_to(std::back_inserter(out), "{:.16g}", value);
  }
}

namespace {

const char* TypeName(prometheus::MetricType type) {
  switch (type) {
    case prometheus::MetricType::Counter:
      return "counter";
    case prometheus::MetricType::Gauge:
      return "gauge";
    case prometheus::MetricType::Untyped:
      return "untyped";
    case prometheus::MetricType::Histogram:
      return "histogram";  // FamilyText only: its sample lines are written already
    default:
      return nullptr;
  }
}

void AppendHeader(const std::string& name, const std::string& help, const char* type,
                  std::string& out) {
  if (!help.empty()) fmt::format_to(std::back_inserter(out), "# HELP {} {}\n", name, help);
  fmt::format_to(std::back_inserter(out), "# TYPE {} {}\n", name, type);
}

}  // namespace

void AppendFamilies(const std::vector<FamilyText>& families, std::string& out) {
  for (const auto& family : families) {
    AppendHeader(family.name, family.help, TypeName(family.type), out);
    out += family.samples;
  }
}

std::size_t MoveToParts(std::vector<FamilyText>&& families, std::vector<std::string>& parts) {
  std::size_t size = 0;
  parts.reserve(parts.size() + 2 * families.size());
  for (auto& family : families) {
    std::string header;
    AppendHeader(family.name, family.help, TypeName(family.type), header);
    size += header.size() + family.samples.size();
    parts.push_back(std::move(header));
    parts.push_back(std::move(family.samples));
  }
  families = {};
  return size;
}

void AppendExposition(const std::vector<prometheus::MetricFamily>& families, std::string& out) {
  for (const auto& family : families) {
    const char* type = TypeName(family.type);
    if (!type || family.type == prometheus::MetricType::Histogram) {
      std::ostringstream text;
      prometheus::TextSerializer().Serialize(text, {family});
      out += std::move(text).str();
      continue;
    }
    if (!family.help.empty())
      fmt::format_to(std::back_inserter(out), "# HELP {} {}\n", family.name, family.help);
    fmt::format_to(std::back_inserter(out), "# TYPE {} {}\n", family.name, type);
    for (const auto& metric : family.metric) {
      out += family.name;
      if (!metric.label.empty()) {
        out += '{';
        for (std::size_t i = 0; i < metric.label.size(); ++i) {
          if (i > 0) out += ',';
          out += metric.label[i].name;
          out += "=\"";
          AppendLabelValue(metric.label[i].value, out);
          out += '"';
        }
        out += '}';
      }
      out += ' ';
      const double value = family.type == prometheus::MetricType::Counter ? metric.counter.value
                           : family.type == prometheus::MetricType::Gauge ? metric.gauge.value
                                                                          : metric.untyped.value;
      AppendSampleValue(value, out);
      if (metric.timestamp_ms != 0) {
        out += ' ';
        out += fmt::format_int(metric.timestamp_ms).str();
      }
      out += '\n';
    }
  }
}

}  // namespace pgtally
