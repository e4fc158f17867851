#include "monitoring_files.h"

#include <algorithm>
#include <filesystem>
#include <regex>
#include <stdexcept>

#include "os_util.h"
#include "pgtally/config/collector_loader.h"

namespace pgtally::testing {
namespace {

namespace fs = std::filesystem;

std::string Text(const YAML::Node& node, const char* key) {
  const YAML::Node value = node[key];
  return value.IsDefined() && value.IsScalar() ? value.Scalar() : "";
}

// yaml-cpp throws when asked the type of a key that is not there.
bool IsSequence(const YAML::Node& node) { return node.IsDefined() && node.IsSequence(); }
bool IsMap(const YAML::Node& node) { return node.IsDefined() && node.IsMap(); }

std::vector<fs::path> FilesIn(const fs::path& dir, const std::string& extension) {
  std::vector<fs::path> files;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (entry.is_regular_file() && entry.path().extension() == extension) {
      files.push_back(entry.path());
    }
  }
  std::sort(files.begin(), files.end());
  return files;
}

void AddPanels(const YAML::Node& panels, std::vector<DashboardPanel>& out) {
  if (!IsSequence(panels)) return;
  for (const auto& node : panels) {
    DashboardPanel panel;
    panel.id = node["id"].IsDefined() ? node["id"].as<int>() : 0;
    panel.type = Text(node, "type");
    panel.title = Text(node, "title");
    panel.description = Text(node, "description");
    if (node["fieldConfig"] && node["fieldConfig"]["defaults"]) {
      panel.unit = Text(node["fieldConfig"]["defaults"], "unit");
    }
    if (node["datasource"] && IsMap(node["datasource"])) {
      panel.datasource_uid = Text(node["datasource"], "uid");
    }
    if (IsSequence(node["targets"])) {
      for (const auto& target : node["targets"]) {
        DashboardTarget t{Text(target, "refId"), Text(target, "expr"), ""};
        if (target["datasource"] && IsMap(target["datasource"])) {
          t.datasource_uid = Text(target["datasource"], "uid");
        }
        panel.targets.push_back(std::move(t));
      }
    }
    out.push_back(std::move(panel));
    AddPanels(node["panels"], out);  // a collapsed row keeps its panels inside
  }
}

}  // namespace

std::string LabelValuesSelector(const DashboardVariable& variable) {
  static const std::regex kLabelValues(R"(\s*label_values\((.*),\s*\w+\)\s*)");
  std::smatch match;
  return std::regex_match(variable.query, match, kLabelValues) ? match[1].str() : "";
}

std::vector<Dashboard> LoadDashboards() {
  std::vector<Dashboard> dashboards;
  for (const auto& path : FilesIn(PGTALLY_SOURCE_DIR "/grafana", ".json")) {
    Dashboard dashboard;
    dashboard.file = path.filename().string();
    dashboard.text = ReadFile(path.string());
    try {
      dashboard.json = YAML::Load(dashboard.text);
    } catch (const YAML::Exception& e) {
      throw std::runtime_error(dashboard.file + ": " + e.what());
    }
    AddPanels(dashboard.json["panels"], dashboard.panels);
    if (dashboard.json["templating"] && IsSequence(dashboard.json["templating"]["list"])) {
      for (const auto& node : dashboard.json["templating"]["list"]) {
        DashboardVariable variable{Text(node, "name"), Text(node, "type"), "", ""};
        if (IsMap(node["query"])) {
          variable.query = Text(node["query"], "query");
        } else {
          variable.query = Text(node, "query");
        }
        if (node["current"] && IsMap(node["current"])) {
          const YAML::Node value = node["current"]["value"];
          if (value.IsDefined() && value.IsScalar()) variable.current = value.Scalar();
          if (IsSequence(value) && value.size() > 0) variable.current = value[0].Scalar();
        }
        dashboard.variables.push_back(std::move(variable));
      }
    }
    dashboards.push_back(std::move(dashboard));
  }
  return dashboards;
}

std::vector<PrometheusRule> LoadRules() {
  std::vector<PrometheusRule> rules;
  for (const auto& path : FilesIn(PGTALLY_SOURCE_DIR "/deploy/prometheus", ".yaml")) {
    const YAML::Node root = YAML::LoadFile(path.string());
    for (const auto& group : root["groups"]) {
      for (const auto& node : group["rules"]) {
        PrometheusRule rule{path.filename().string(),
                            Text(group, "name"),
                            Text(node, "alert"),
                            Text(node, "record"),
                            Text(node, "expr"),
                            Text(node, "for"),
                            {},
                            {}};
        for (const char* key : {"labels", "annotations"}) {
          auto& into = std::string(key) == "labels" ? rule.labels : rule.annotations;
          if (IsMap(node[key])) {
            for (const auto& entry : node[key]) {
              into[entry.first.Scalar()] = entry.second.Scalar();
            }
          }
        }
        rules.push_back(std::move(rule));
      }
    }
  }
  return rules;
}

std::map<std::string, std::string> TestVariableValues(const Dashboard& dashboard,
                                                      const std::string& rate_interval,
                                                      const std::string& range) {
  std::map<std::string, std::string> values = {
      {"__rate_interval", rate_interval}, {"__interval", rate_interval}, {"__range", range}};
  for (const auto& variable : dashboard.variables) {
    if (variable.type == "query") {
      values[variable.name] = ".+";
    } else if (variable.type != "datasource") {
      values[variable.name] = variable.current;
    }
  }
  return values;
}

std::set<std::string> ExportedMetricNames() {
  std::set<std::string> names = {
      // pgtally's own (src/collect/exporter.cpp, self_metrics.cpp; README "Self-metrics").
      "pg_up",
      "pgbouncer_up",
      "pgtally_collector_duration_seconds",
      "pgtally_collector_success",
      "pgtally_collector_series",
      "pgtally_collector_rows_omitted",
      "pgtally_collector_skipped",
      "pgtally_collector_errors_total",
      "pgtally_samples_dropped_total",
      "pgtally_config_last_reload_successful",
      "pgtally_config_last_reload_success_timestamp_seconds",
      "pgtally_scrape_duration_seconds",
      "pgtally_build_info",
  };
  const auto loaded = LoadCollectors({PGTALLY_SOURCE_DIR "/queries"});
  if (!loaded.ok()) throw std::runtime_error(loaded.errors.front().ToString());
  for (const auto& spec : loaded.collectors) {
    for (const auto& value : spec.values) names.insert(value.metric_name);
  }
  return names;
}

}  // namespace pgtally::testing
