#include "pgtally/collect/exposition.h"

#include <gtest/gtest.h>
#include <prometheus/text_serializer.h>

#include <cmath>
#include <limits>
#include <random>
#include <sstream>

namespace pgtally {
namespace {

std::string Reference(const std::vector<prometheus::MetricFamily>& families) {
  std::ostringstream out;
  prometheus::TextSerializer().Serialize(out, families);
  return std::move(out).str();
}

std::string Ours(const std::vector<prometheus::MetricFamily>& families) {
  std::string out;
  AppendExposition(families, out);
  return out;
}

prometheus::MetricFamily Family(prometheus::MetricType type, const std::vector<double>& values) {
  prometheus::MetricFamily family{"pg_x", "Help \\\\ with\\nescapes.", type, {}};
  for (std::size_t i = 0; i < values.size(); ++i) {
    prometheus::ClientMetric metric;
    metric.label = {{"datname", "db"}, {"relname", "t" + std::to_string(i)}};
    metric.counter.value = metric.gauge.value = metric.untyped.value = values[i];
    family.metric.push_back(metric);
  }
  return family;
}

TEST(Exposition, MatchesTextSerializerOnAwkwardValues) {
  const double inf = std::numeric_limits<double>::infinity();
  const std::vector<double> values = {0.0,
                                      -0.0,
                                      1,
                                      -1,
                                      42,
                                      0.1,
                                      1.0 / 3,
                                      -2.5e-7,
                                      123456789012345.0,
                                      999999999999999.0,
                                      1e15,
                                      1e16,
                                      12345678901234567890.0,
                                      1e300,
                                      std::numeric_limits<double>::min(),
                                      std::numeric_limits<double>::denorm_min(),
                                      std::numeric_limits<double>::max(),
                                      std::nan(""),
                                      inf,
                                      -inf};
  for (const auto type : {prometheus::MetricType::Counter, prometheus::MetricType::Gauge,
                          prometheus::MetricType::Untyped}) {
    const std::vector<prometheus::MetricFamily> families = {Family(type, values)};
    EXPECT_EQ(Ours(families), Reference(families));
  }
}

TEST(Exposition, MatchesTextSerializerOnRandomValues) {
  std::mt19937_64 random(20261123);
  std::uniform_real_distribution<double> exponent(-30, 30);
  std::vector<double> values;
  for (int i = 0; i < 20000; ++i) {
    const double magnitude = std::pow(10.0, exponent(random));
    values.push_back((i % 2 ? -1 : 1) * magnitude);
    values.push_back(std::round(magnitude));
  }
  const std::vector<prometheus::MetricFamily> families = {
      Family(prometheus::MetricType::Gauge, values)};
  EXPECT_EQ(Ours(families), Reference(families));
}

TEST(Exposition, LabelsHelpTimestampsAndOtherTypes) {
  prometheus::MetricFamily plain{"pg_up", "", prometheus::MetricType::Gauge, {}};
  prometheus::ClientMetric up;
  up.gauge.value = 1;
  up.timestamp_ms = 1700000000123;
  plain.metric.push_back(up);
  prometheus::MetricFamily escaped = Family(prometheus::MetricType::Counter, {7});
  escaped.metric[0].label.push_back({"query", "a \"quoted\" \\ back\nslash"});
  prometheus::MetricFamily summary{"pgtally_s", "A summary.", prometheus::MetricType::Summary, {}};
  prometheus::ClientMetric s;
  s.summary.sample_count = 3;
  s.summary.sample_sum = 1.5;
  s.summary.quantile = {{0.5, 0.25}};
  summary.metric.push_back(s);
  const std::vector<prometheus::MetricFamily> families = {plain, escaped, summary};
  EXPECT_EQ(Ours(families), Reference(families));
  EXPECT_NE(Ours(families).find("query=\"a \\\"quoted\\\" \\\\ back\\nslash\""), std::string::npos);
}

}  // namespace
}  // namespace pgtally
