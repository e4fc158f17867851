#pragma once

#include <map>
#include <set>
#include <string>
#include <string_view>

// Just enough PromQL for checking dashboards and rules: which metric names an expression reads,
// and Grafana's variable substitution. Validity itself is Prometheus' call (its HTTP API).
namespace pgtally::testing {

// The metric names `expr` selects: identifiers that are not functions, aggregations, keywords,
// label names (inside {...} or after by/without/on/ignoring/group_left/group_right) or
// variables ($name, ${name}). Strings, numbers and durations are skipped.
std::set<std::string> PromqlMetricNames(std::string_view expr);

// Replaces Grafana variables ($name, ${name}, ${name:format}, [[name]]) whose names are in
// `values`; others are left as they are.
std::string ExpandGrafanaVariables(std::string_view expr,
                                   const std::map<std::string, std::string>& values);

}  // namespace pgtally::testing
