#include "pgtally/cli/exporter_setup.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <functional>
#include <regex>

#include "pgtally/config/collector_loader.h"
#include "pgtally/config/config_file.h"
#include "pgtally/log/logging.h"
#include "pgtally/pg/dsn.h"

namespace pgtally {
namespace {

// The built-in directory (unless switched off), then the user's collector paths.
std::vector<std::string> CollectorPaths(const ExporterConfig& config) {
  std::vector<std::string> paths;
  if (config.builtin_collectors) {
    paths.push_back(config.builtin_collectors_dir.empty() ? FindBuiltinCollectorsDir()
                                                          : config.builtin_collectors_dir);
  }
  paths.insert(paths.end(), config.collector_paths.begin(), config.collector_paths.end());
  return paths;
}

// A whole-name database filter; an empty pattern means no filter.
std::optional<std::regex> CompileFilter(const std::string& pattern, const char* setting,
                                        std::vector<std::string>& errors) {
  if (pattern.empty()) return std::nullopt;
  try {
    return std::regex(pattern, std::regex::extended);
  } catch (const std::regex_error& e) {
    errors.push_back(fmt::format("{}: \"{}\" is not a valid regular expression: {}", setting,
                                 pattern, e.what()));
    return std::nullopt;
  }
}

void AddAll(const Diagnostics& diagnostics, std::vector<std::string>& into) {
  for (const auto& diagnostic : diagnostics) into.push_back(diagnostic.ToString());
}

}  // namespace

std::vector<std::string> LoadSetup(const Flags& flags, const Environment& environment,
                                   ExporterSetup& setup) {
  std::vector<std::string> errors;
  setup = {};
  ExporterConfig& config = setup.config;
  const auto config_errors = BuildConfig(flags, environment, config);
  if (auto password = pg::DsnPassword(config.data_source_name)) AddSecret(*password);
  for (const auto& [name, module] : config.auth_modules) {
    if (!module.password.empty()) AddSecret(module.password);
  }
  AddAll(config_errors, errors);
  if (!errors.empty()) return errors;
  if (auto error = pg::DsnError(config.data_source_name);
      error && !config.data_source_name.empty()) {
    const bool from_environment = environment.data_source_name == config.data_source_name;
    errors.push_back(fmt::format("{} is not a valid connection string: {}",
                                 from_environment ? "DATA_SOURCE_NAME" : "data_source_name",
                                 *error));
    return errors;
  }

  if (flags.web_config_file) AddAll(LoadWebConfigFile(*flags.web_config_file, setup.web), errors);

  auto loaded = LoadCollectors(CollectorPaths(config));
  if (!config.extend_query_paths.empty()) {
    auto extended = LoadCollectors(config.extend_query_paths, CollectorFormat::kPostgresExporter);
    const std::size_t from = loaded.collectors.size();
    std::move(extended.collectors.begin(), extended.collectors.end(),
              std::back_inserter(loaded.collectors));
    loaded.errors.insert(loaded.errors.end(), extended.errors.begin(), extended.errors.end());
    CheckUniqueNames(loaded.collectors, loaded.errors, from);
  }
  AddAll(loaded.errors, errors);
  AddAll(ApplyParameterOverrides(loaded.collectors, config.collector_parameters), errors);
  AddAll(ApplyCacheTtlOverrides(loaded.collectors, config.collector_cache_ttls), errors);
  for (const auto& name : config.disabled_collectors) {
    const auto removed =
        std::erase_if(loaded.collectors, [&](const auto& spec) { return spec.name == name; });
    if (removed == 0) spdlog::warn("cannot disable unknown collector: collector={}", Quoted(name));
  }
  setup.collectors = std::move(loaded.collectors);

  TargetOptions& target = setup.target;
  target.dsn = config.data_source_name;
  target.password_file = config.password_file;
  target.connect_timeout = config.connect_timeout;
  target.default_timeout = config.default_collector_timeout;
  target.lock_timeout = config.lock_timeout;
  target.discovery_interval = config.discovery_interval;
  target.database_parallelism = config.database_parallelism;
  target.include_databases = CompileFilter(config.include_databases, "databases.include", errors);
  target.exclude_databases = CompileFilter(config.exclude_databases, "databases.exclude", errors);

  ProbeOptions& probe = setup.probe;
  probe.auth_modules = config.auth_modules;
  probe.idle_timeout = config.probe_idle_timeout;
  probe.max_connections = config.probe_max_connections;
  probe.max_targets_per_host = config.probe_max_targets_per_host;
  probe.allowed_targets =
      CompileFilter(config.probe_allowed_targets, "probe.allowed_targets", errors);
  probe.defaults = target;
  probe.defaults.dsn.clear();
  probe.defaults.password_file.clear();
  for (auto& error : errors) error = ScrubSecrets(error);
  return errors;
}

std::string SetupFilesDigest(const Flags& flags, const ExporterConfig& config) {
  std::vector<std::string> files;
  if (flags.config_file) files.push_back(*flags.config_file);
  if (flags.web_config_file) files.push_back(*flags.web_config_file);
  Diagnostics ignored;  // a path that cannot be read shows up when it is loaded
  for (const auto& paths : {CollectorPaths(config), config.extend_query_paths}) {
    const auto collector_files = CollectorFiles(paths, ignored);
    files.insert(files.end(), collector_files.begin(), collector_files.end());
  }

  std::string digest;
  for (const auto& file : files) {
    const auto text = ReadConfigFile(file, ignored);
    digest += fmt::format("{}:{:x}\n", file, std::hash<std::string>{}(text.value_or("")));
  }
  return digest;
}

}  // namespace pgtally
