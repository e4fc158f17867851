#include "promql.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace pgtally::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

TEST(PromqlMetricNames, SelectorsFunctionsAndAggregations) {
  EXPECT_THAT(
      PromqlMetricNames(
          R"(sum by (datname) (rate(pg_stat_database_xact_commit_total{job=~"$job", datname!="x"}[$__rate_interval])))"),
      ElementsAre("pg_stat_database_xact_commit_total"));
  EXPECT_THAT(PromqlMetricNames("pg_up == 0"), ElementsAre("pg_up"));
  EXPECT_THAT(PromqlMetricNames("topk(10, a) / on (instance, datname) group_left(query) b"),
              ElementsAre("a", "b"));
  EXPECT_THAT(PromqlMetricNames("a and b unless c or d offset 5m > bool 1e3"),
              ElementsAre("a", "b", "c", "d"));
  EXPECT_THAT(PromqlMetricNames("sum without(pid) (x) / ignoring (phase) y"),
              ElementsAre("x", "y"));
  EXPECT_THAT(PromqlMetricNames("level:pg_stat_statements_seconds:rate5m"),
              ElementsAre("level:pg_stat_statements_seconds:rate5m"));
}

TEST(PromqlMetricNames, StringsNumbersDurationsAndVariablesAreNotNames) {
  EXPECT_THAT(
      PromqlMetricNames(
          R"q(label_replace(vector(1), "dst", "$1", "src", "(.*)") + 0x1F + 1.5e-3 + Inf)q"),
      IsEmpty());
  EXPECT_THAT(PromqlMetricNames("topk($topk, x[1h:5m] @ start())"), ElementsAre("x"));
  EXPECT_THAT(PromqlMetricNames("max_over_time(x[${__range}]) * ${factor:raw}"), ElementsAre("x"));
  EXPECT_THAT(PromqlMetricNames(R"q(x{a="}{by (y)"} + 'z\'w')q"), ElementsAre("x"));
}

TEST(ExpandGrafanaVariables, AllThreeSyntaxes) {
  const std::map<std::string, std::string> values = {
      {"job", ".+"}, {"__rate_interval", "10s"}, {"topk", "10"}};
  EXPECT_EQ(
      ExpandGrafanaVariables(R"(topk($topk, rate(x{job=~"$job"}[$__rate_interval])))", values),
      R"(topk(10, rate(x{job=~".+"}[10s])))");
  EXPECT_EQ(ExpandGrafanaVariables("${job:regex} [[topk]] $unknown $", values), ".+ 10 $unknown $");
}

}  // namespace
}  // namespace pgtally::testing
