// Lint for the Grafana dashboards (grafana/*.json) and Prometheus rules (deploy/prometheus/): the
// checks Grafana's dashboard-linter and mixtool make, which are not installable here, plus ours:
// every metric a panel or rule reads is one pgtally exports. Whether each expression parses and
// returns data is checked against a real Prometheus in tests/integration/dashboards_test.cpp.
//
// The Kubernetes manifests embedding the dashboards and the rules are generated from them; after
// changing one, regenerate with
//   PGTALLY_UPDATE_DOCS=1 build/bin/unit_tests --gtest_filter='Monitoring.*'

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <string>

#include "monitoring_files.h"
#include "os_util.h"
#include "promql.h"

namespace pgtally::testing {
namespace {

using ::testing::IsEmpty;
using ::testing::SizeIs;

// Names a dashboard or rule may read: what pgtally exports, Prometheus' own `up`, and the
// recording rules shipped beside the alerts.
std::set<std::string> KnownMetricNames() {
  auto names = ExportedMetricNames();
  names.insert("up");
  for (const auto& rule : LoadRules()) {
    if (!rule.record.empty()) names.insert(rule.record);
  }
  return names;
}

// Problems with how `expr` uses counters and rate windows; `where` prefixes each.
std::vector<std::string> CounterProblems(const std::string& expr, const std::string& where) {
  std::vector<std::string> problems;
  for (const auto& name : PromqlMetricNames(expr)) {
    if (!name.ends_with("_total")) continue;
    // Every occurrence must be the argument of rate/irate/increase.
    for (auto at = expr.find(name); at != std::string::npos; at = expr.find(name, at + 1)) {
      std::string before = expr.substr(0, at);
      while (!before.empty() && std::isspace(static_cast<unsigned char>(before.back()))) {
        before.pop_back();
      }
      if (!before.ends_with("rate(") && !before.ends_with("increase(")) {
        problems.push_back(where + ": counter " + name + " outside rate()/increase()");
      }
    }
  }
  return problems;
}

TEST(Monitoring, DashboardsFollowTheConventions) {
  const auto dashboards = LoadDashboards();
  ASSERT_THAT(dashboards, SizeIs(4));
  const auto known = KnownMetricNames();
  std::set<std::string> uids;
  for (const auto& dashboard : dashboards) {
    SCOPED_TRACE(dashboard.file);
    const std::string uid = dashboard.json["uid"].as<std::string>("");
    EXPECT_EQ(dashboard.file, uid + ".json") << "the file is named after its stable uid";
    EXPECT_TRUE(uids.insert(uid).second) << "duplicate uid " << uid;
    EXPECT_THAT(dashboard.json["title"].as<std::string>(""), ::testing::StartsWith("pgtally / "));
    EXPECT_FALSE(dashboard.json["__inputs"].IsDefined())
        << "the datasource variable replaces __inputs, which only manual import understands";

    // The variables, in order, and nothing pinned to one installation.
    ASSERT_GE(dashboard.variables.size(), 3u);
    EXPECT_EQ(dashboard.variables[0].name, "datasource");
    EXPECT_EQ(dashboard.variables[0].type, "datasource");
    EXPECT_EQ(dashboard.variables[0].query, "prometheus");
    EXPECT_EQ(dashboard.variables[1].name, "job");
    EXPECT_EQ(dashboard.variables[2].name, "instance");
    for (const auto& variable : dashboard.variables) {
      if (variable.type == "query") {
        const std::string selector = LabelValuesSelector(variable);
        EXPECT_FALSE(selector.empty()) << variable.name << ": not label_values(selector, label)";
        for (const auto& name : PromqlMetricNames(selector)) {
          EXPECT_TRUE(known.contains(name)) << "variable " << variable.name << " reads " << name;
        }
      } else if (variable.type != "datasource") {
        EXPECT_FALSE(variable.current.empty()) << "variable " << variable.name << " has no value";
      }
    }

    std::set<int> ids;
    for (const auto& panel : dashboard.panels) {
      const std::string where =
          dashboard.file + " panel " + std::to_string(panel.id) + " \"" + panel.title + "\"";
      EXPECT_TRUE(ids.insert(panel.id).second) << where << ": duplicate id";
      EXPECT_FALSE(panel.title.empty()) << where;
      if (!panel.HasQueries()) continue;
      EXPECT_FALSE(panel.description.empty()) << where << ": no description";
      EXPECT_FALSE(panel.unit.empty()) << where << ": no unit";
      EXPECT_EQ(panel.datasource_uid, "${datasource}") << where;
      EXPECT_THAT(panel.targets, ::testing::Not(IsEmpty())) << where;
      for (const auto& target : panel.targets) {
        const std::string at = where + " target " + target.ref_id;
        EXPECT_EQ(target.datasource_uid, "${datasource}") << at;
        const auto names = PromqlMetricNames(target.expr);
        EXPECT_THAT(names, ::testing::Not(IsEmpty())) << at << ": " << target.expr;
        for (const auto& name : names) {
          EXPECT_TRUE(known.contains(name)) << at << ": pgtally exports no " << name;
        }
        // Every query is scoped by the job and instance variables (PgBouncer panels have their
        // own pair), and never pinned to one installation.
        EXPECT_TRUE(std::regex_search(target.expr, std::regex(R"(job=~"\$\w+")"))) << at;
        EXPECT_TRUE(std::regex_search(target.expr, std::regex(R"(instance=~"\$\w+")"))) << at;
        EXPECT_FALSE(std::regex_search(target.expr, std::regex(R"((instance|job)=~?"[^$])")))
            << at << ": hard-coded job or instance";
        // rate() windows follow the scrape interval Grafana knows of.
        const std::regex window(R"(rate\([^\[]*\[([^\]]*)\])");
        for (std::sregex_iterator it(target.expr.begin(), target.expr.end(), window), end;
             it != end; ++it) {
          EXPECT_EQ((*it)[1].str(), "$__rate_interval") << at;
        }
        for (const auto& problem : CounterProblems(target.expr, at)) ADD_FAILURE() << problem;
      }
    }
  }
}

TEST(Monitoring, RulesFollowTheConventions) {
  const auto rules = LoadRules();
  const auto known = KnownMetricNames();
  std::set<std::string> alerts;
  for (const auto& rule : rules) {
    const std::string where = rule.file + " " + (rule.alert.empty() ? rule.record : rule.alert);
    for (const auto& name : PromqlMetricNames(rule.expr)) {
      EXPECT_TRUE(known.contains(name)) << where << ": pgtally exports no " << name;
    }
    for (const auto& problem : CounterProblems(rule.expr, where)) ADD_FAILURE() << problem;
    if (rule.alert.empty()) {
      EXPECT_TRUE(std::regex_match(rule.record, std::regex("[a-z_]+:[a-z0-9_]+:[a-z0-9_]+")))
          << where << ": recording rules are named level:metric:operations";
      continue;
    }
    alerts.insert(rule.alert);
    EXPECT_TRUE(std::regex_match(rule.alert, std::regex("[A-Z][A-Za-z0-9]*"))) << where;
    EXPECT_LT(rule.alert.size(), 40u) << where;
    EXPECT_FALSE(rule.for_duration.empty()) << where << ": no for";
    const auto value = [](const std::map<std::string, std::string>& map, const char* key) {
      const auto it = map.find(key);
      return it == map.end() ? std::string() : it->second;
    };
    EXPECT_THAT(value(rule.labels, "severity"), ::testing::AnyOf("info", "warning", "critical"))
        << where;
    EXPECT_FALSE(value(rule.annotations, "summary").empty()) << where;
    EXPECT_THAT(value(rule.annotations, "description"), ::testing::HasSubstr("{{")) << where;
    EXPECT_THAT(value(rule.annotations, "description"), ::testing::HasSubstr("Runbook")) << where;
  }
  EXPECT_GE(alerts.size(), 15u);

  // Every alert has a promtool unit test.
  std::string tests;
  for (const auto& entry :
       std::filesystem::directory_iterator(PGTALLY_SOURCE_DIR "/deploy/prometheus/tests")) {
    tests += ReadFile(entry.path().string());
  }
  const std::string readme = ReadFile(PGTALLY_SOURCE_DIR "/deploy/prometheus/README.md");
  for (const auto& alert : alerts) {
    EXPECT_THAT(tests, ::testing::HasSubstr("alertname: " + alert))
        << alert << " has no promtool test";
    EXPECT_THAT(readme, ::testing::HasSubstr("`" + alert + "`"))
        << alert << " is missing from deploy/prometheus/README.md";
  }
}

// One ConfigMap per dashboard (a single one would pass the 256 KiB limit of kubectl apply's
// annotation), labelled for the kube-prometheus-stack Grafana sidecar.
std::string RenderConfigMaps(const std::vector<Dashboard>& dashboards) {
  std::string out =
      "# Generated from grafana/*.json by tests/unit/monitoring_lint_test.cpp; do not edit.\n"
      "# The Grafana sidecar of kube-prometheus-stack loads ConfigMaps labelled\n"
      "# grafana_dashboard: \"1\" (its default label).\n";
  for (const auto& dashboard : dashboards) {
    const std::string name = dashboard.file.substr(0, dashboard.file.size() - 5);
    out += "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: " + name +
           "-dashboard\n  labels:\n    grafana_dashboard: \"1\"\n    app.kubernetes.io/name: "
           "pgtally\n  annotations:\n    grafana_folder: PostgreSQL\ndata:\n  " +
           dashboard.file + ": |\n";
    std::istringstream lines(dashboard.text);
    for (std::string line; std::getline(lines, line);) {
      out += line.empty() ? "\n" : "    " + line + "\n";
    }
  }
  return out;
}

// The file at `path` (under deploy/kubernetes/monitoring) as it is, after checking it equals
// `generated` (or writing it, with PGTALLY_UPDATE_DOCS set).
std::string CheckGenerated(const std::string& name, const std::string& generated) {
  const std::string path = PGTALLY_SOURCE_DIR "/deploy/kubernetes/monitoring/" + name;
  if (std::getenv("PGTALLY_UPDATE_DOCS")) std::ofstream(path) << generated;
  const std::string current = ReadFile(path);
  EXPECT_EQ(current, generated)
      << path << " is out of date; run PGTALLY_UPDATE_DOCS=1 build/bin/unit_tests "
      << "--gtest_filter='Monitoring.*'";
  return current;
}

TEST(Monitoring, ConfigMapsMatchTheDashboards) {
  const std::string current =
      CheckGenerated("grafana-dashboards.yaml", RenderConfigMaps(LoadDashboards()));
  // And it is YAML whose documents carry the dashboards unchanged.
  const auto documents = YAML::LoadAll(current);
  ASSERT_THAT(documents, SizeIs(LoadDashboards().size()));
  for (const auto& dashboard : LoadDashboards()) {
    bool found = false;
    for (const auto& document : documents) {
      if (document["data"][dashboard.file]) {
        found = document["data"][dashboard.file].as<std::string>() == dashboard.text;
      }
    }
    EXPECT_TRUE(found) << dashboard.file;
  }
}

// The same rules as a PrometheusRule for the Prometheus Operator: the groups of every rule file,
// moved under spec.
std::string RenderPrometheusRule() {
  std::string out =
      "# Generated from deploy/prometheus/pgtally-*.yaml by tests/unit/monitoring_lint_test.cpp;\n"
      "# do not edit. The Prometheus Operator loads PrometheusRules whose labels match its\n"
      "# ruleSelector (kube-prometheus-stack: release: <its release name>); adjust the label.\n"
      "apiVersion: monitoring.coreos.com/v1\nkind: PrometheusRule\nmetadata:\n  name: pgtally\n"
      "  labels:\n    app.kubernetes.io/name: pgtally\n    release: kube-prometheus-stack\n"
      "spec:\n  groups:\n";
  for (const char* file : {"pgtally-alerts.yaml", "pgtally-rules.yaml"}) {
    const std::string all = ReadFile(std::string(PGTALLY_SOURCE_DIR "/deploy/prometheus/") + file);
    const auto groups = all.find("\ngroups:\n");
    std::istringstream lines(all.substr(groups == std::string::npos ? 0 : groups + 9));
    for (std::string line; std::getline(lines, line);) {
      out += line.empty() ? "\n" : "  " + line + "\n";
    }
  }
  return out;
}

TEST(Monitoring, PrometheusRuleMatchesTheRuleFiles) {
  const std::string current = CheckGenerated("prometheus-rules.yaml", RenderPrometheusRule());
  std::size_t rules = 0;
  for (const auto& group : YAML::Load(current)["spec"]["groups"]) {
    rules += group["rules"].size();
  }
  EXPECT_EQ(rules, LoadRules().size());
}

}  // namespace
}  // namespace pgtally::testing
