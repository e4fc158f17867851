#pragma once

#include <yaml-cpp/yaml.h>

#include <map>
#include <set>
#include <string>
#include <vector>

// The Grafana dashboards (grafana/*.json) and Prometheus rules (deploy/prometheus/*.yaml) as the
// tests see them. JSON is read with yaml-cpp: JSON is YAML's flow style.
namespace pgtally::testing {

struct DashboardTarget {
  std::string ref_id;
  std::string expr;
  std::string datasource_uid;
};

struct DashboardPanel {
  int id = 0;
  std::string type;
  std::string title;
  std::string description;
  std::string unit;
  std::string datasource_uid;
  std::vector<DashboardTarget> targets;
  // Rows and text panels hold no query, so no unit or data source.
  bool HasQueries() const { return type != "row" && type != "text"; }
};

struct DashboardVariable {
  std::string name;
  std::string type;   // datasource, query, custom, interval, ...
  std::string query;  // for query variables: the PromQL label_values(...) text
  std::string current;
};

// The series selector of a query variable's label_values(selector, label), or "" when the query
// has another form.
std::string LabelValuesSelector(const DashboardVariable& variable);

struct Dashboard {
  std::string file;  // the file name, e.g. pgtally-overview.json
  std::string text;  // the file as read
  YAML::Node json;
  std::vector<DashboardPanel> panels;  // rows' nested panels included, in order
  std::vector<DashboardVariable> variables;
};

// Every grafana/*.json of the source tree, by file name. Throws on a file that does not parse.
std::vector<Dashboard> LoadDashboards();

struct PrometheusRule {
  std::string file;
  std::string group;
  std::string alert;   // empty for a recording rule
  std::string record;  // empty for an alerting rule
  std::string expr;
  std::string for_duration;
  std::map<std::string, std::string> labels;
  std::map<std::string, std::string> annotations;
};

// The rules of deploy/prometheus/*.yaml (not the promtool tests under tests/).
std::vector<PrometheusRule> LoadRules();

// What to put in place of a dashboard's variables to run its expressions against a test
// Prometheus: every query variable matches anything (".+"), custom and interval
// variables take their current value, and Grafana's built-ins get `rate_interval` and `range`.
std::map<std::string, std::string> TestVariableValues(const Dashboard& dashboard,
                                                      const std::string& rate_interval,
                                                      const std::string& range);

// The metric names pgtally can export: every built-in collector's metrics and pgtally's own.
std::set<std::string> ExportedMetricNames();

}  // namespace pgtally::testing
