#include "pgtally/config/exporter_config.h"

#include <fmt/format.h>

#include <algorithm>
#include <filesystem>

#include "config/yaml_reader.h"

namespace pgtally {
namespace {

// Reads one optional section map; returns an undefined node when it is absent or invalid.
YAML::Node Section(YamlReader& reader, const YAML::Node& root, const char* key,
                   std::initializer_list<std::string_view> allowed) {
  const YAML::Node section = root[key];
  if (!section.IsDefined() || section.IsNull()) return YAML::Node(YAML::NodeType::Undefined);
  const std::string what = fmt::format("section \"{}\"", key);
  if (!reader.ExpectMap(section, what)) return YAML::Node(YAML::NodeType::Undefined);
  reader.CheckKeys(section, allowed, what);
  return section;
}

template <typename T>
void Assign(std::optional<T> value, T& into) {
  if (value) into = std::move(*value);
}

// libpq keywords that an auth module's options may not set: the target gives the server, and
// userpass the credentials.
constexpr std::string_view kReservedOptions[] = {"host",     "hostaddr", "port",   "user",
                                                 "password", "passfile", "service"};

void ReadAuthModules(YamlReader& reader, const YAML::Node& root,
                     std::map<std::string, AuthModule>& into) {
  const YAML::Node modules = root["auth_modules"];
  if (!modules.IsDefined() || modules.IsNull()) return;
  if (!reader.ExpectMap(modules, "section \"auth_modules\"")) return;
  for (const auto& entry : modules) {
    const std::string name = entry.first.Scalar();
    const std::string what = fmt::format("auth module \"{}\"", name);
    const YAML::Node node = entry.second;
    if (!reader.ExpectMap(node, what)) continue;
    reader.CheckKeys(node, {"type", "userpass", "options"}, what);
    AuthModule module;
    if (auto type = reader.GetString(node, "type", what, true); type && *type != "userpass") {
      reader.Error(node["type"], fmt::format("{}: type must be userpass, not \"{}\"", what, *type));
    }
    if (const YAML::Node userpass = node["userpass"]; !userpass.IsDefined()) {
      reader.Error(node, fmt::format("{}: \"userpass\" is required", what));
    } else if (reader.ExpectMap(userpass, what + " userpass")) {
      reader.CheckKeys(userpass, {"username", "password", "password_file"}, what + " userpass");
      Assign(reader.GetString(userpass, "username", what, true), module.username);
      Assign(reader.GetString(userpass, "password", what), module.password);
      Assign(reader.GetString(userpass, "password_file", what), module.password_file);
      if (!module.password.empty() && !module.password_file.empty()) {
        reader.Error(userpass["password_file"],
                     fmt::format("{}: give password or password_file, not both", what));
      }
    }
    if (auto options = reader.GetScalarMap(node, "options", what)) {
      for (auto& option : *options) {
        if (std::find(std::begin(kReservedOptions), std::end(kReservedOptions), option.name) !=
            std::end(kReservedOptions)) {
          reader.Error(node["options"][option.name],
                       fmt::format("{}: option \"{}\" cannot be set here: the /probe target "
                                   "gives the server and userpass the credentials",
                                   what, option.name));
          continue;
        }
        module.options[option.name] = std::move(option.value);
      }
    }
    into[name] = std::move(module);
  }
}

}  // namespace

std::optional<LogFormat> ParseLogFormat(std::string_view text) {
  if (text == "logfmt") return LogFormat::kLogfmt;
  if (text == "json") return LogFormat::kJson;
  return std::nullopt;
}

Diagnostics ParseExporterConfig(std::string_view text, const std::string& filename,
                                ExporterConfig& config) {
  Diagnostics errors;
  YamlReader reader(filename, errors);
  const auto root = reader.Parse(text);
  if (!root) return errors;
  if (root->IsNull()) return errors;  // an empty file keeps every default
  if (!reader.ExpectMap(*root, "the config file")) return errors;
  reader.CheckKeys(*root,
                   {"data_source_name", "collectors", "databases", "connection", "scrape", "web",
                    "log", "auth_modules", "probe"},
                   "config file");

  // Relative collector paths are relative to the config file, not to the working directory.
  const auto base = std::filesystem::path(filename).parent_path();
  const auto resolve = [&](const std::string& path) {
    return std::filesystem::path(path).is_absolute() ? path
                                                     : (base / path).lexically_normal().string();
  };

  Assign(reader.GetString(*root, "data_source_name", "config file"), config.data_source_name);

  if (auto s = Section(reader, *root, "collectors",
                       {"builtin", "builtin_dir", "paths", "extend_query_paths", "disabled",
                        "default_timeout", "lock_timeout", "parameters", "cache_ttl"});
      s.IsDefined()) {
    Assign(reader.GetBool(s, "builtin", "collectors"), config.builtin_collectors);
    if (auto dir = reader.GetString(s, "builtin_dir", "collectors")) {
      config.builtin_collectors_dir = resolve(*dir);
    }
    if (auto paths = reader.GetStringList(s, "paths", "collectors")) {
      for (const auto& path : *paths) config.collector_paths.push_back(resolve(path));
    }
    if (auto paths = reader.GetStringList(s, "extend_query_paths", "collectors")) {
      for (const auto& path : *paths) config.extend_query_paths.push_back(resolve(path));
    }
    Assign(reader.GetStringList(s, "disabled", "collectors"), config.disabled_collectors);
    Assign(reader.GetDuration(s, "default_timeout", "collectors"),
           config.default_collector_timeout);
    Assign(reader.GetDuration(s, "lock_timeout", "collectors"), config.lock_timeout);
    if (auto settings = reader.GetScalarMap(s, "parameters", "collectors")) {
      for (auto& setting : *settings) {
        config.collector_parameters.push_back(
            {std::move(setting.name), std::move(setting.value), std::move(setting.location)});
      }
    }
    if (auto settings = reader.GetScalarMap(s, "cache_ttl", "collectors")) {
      const YAML::Node ttls = s["cache_ttl"];
      for (auto& setting : *settings) {
        if (auto ttl = reader.GetDuration(ttls, setting.name.c_str(), "collectors.cache_ttl")) {
          config.collector_cache_ttls.push_back(
              {std::move(setting.name), *ttl, std::move(setting.location)});
        }
      }
    }
  }
  if (auto s = Section(reader, *root, "databases",
                       {"include", "exclude", "discovery_interval", "parallelism"});
      s.IsDefined()) {
    Assign(reader.GetDuration(s, "discovery_interval", "databases"), config.discovery_interval);
    Assign(reader.GetIntBetween(s, "parallelism", "databases", 1, 64), config.database_parallelism);
    Assign(reader.GetString(s, "include", "databases"), config.include_databases);
    Assign(reader.GetString(s, "exclude", "databases"), config.exclude_databases);
  }
  if (auto s = Section(reader, *root, "connection",
                       {"connect_timeout", "password_file", "max_connections"});
      s.IsDefined()) {
    Assign(reader.GetDuration(s, "connect_timeout", "connection"), config.connect_timeout);
    Assign(reader.GetIntBetween(s, "max_connections", "connection", 1, 10000),
           config.max_connections);
    if (auto file = reader.GetString(s, "password_file", "connection")) {
      config.password_file = resolve(*file);
    }
  }
  ReadAuthModules(reader, *root, config.auth_modules);
  for (auto& [name, module] : config.auth_modules) {
    if (!module.password_file.empty()) module.password_file = resolve(module.password_file);
  }
  if (auto s =
          Section(reader, *root, "probe",
                  {"idle_timeout", "max_connections", "max_targets_per_host", "allowed_targets"});
      s.IsDefined()) {
    Assign(reader.GetDuration(s, "idle_timeout", "probe"), config.probe_idle_timeout);
    Assign(reader.GetIntBetween(s, "max_connections", "probe", 1, 10000),
           config.probe_max_connections);
    Assign(reader.GetIntBetween(s, "max_targets_per_host", "probe", 1, 10000),
           config.probe_max_targets_per_host);
    Assign(reader.GetString(s, "allowed_targets", "probe"), config.probe_allowed_targets);
  }
  if (auto s = Section(reader, *root, "scrape", {"timeout"}); s.IsDefined()) {
    Assign(reader.GetDuration(s, "timeout", "scrape"), config.scrape_timeout);
  }
  if (auto s = Section(reader, *root, "web", {"listen_address", "telemetry_path"}); s.IsDefined()) {
    Assign(reader.GetString(s, "listen_address", "web"), config.listen_address);
    Assign(reader.GetString(s, "telemetry_path", "web"), config.telemetry_path);
  }
  if (auto s = Section(reader, *root, "log", {"level", "format"}); s.IsDefined()) {
    Assign(reader.GetString(s, "level", "log"), config.log_level);
    if (auto format = reader.GetString(s, "format", "log")) {
      if (auto parsed = ParseLogFormat(*format)) {
        config.log_format = *parsed;
      } else {
        reader.Error(s["format"],
                     fmt::format("log: format must be logfmt or json, not \"{}\"", *format));
      }
    }
  }
  return errors;
}

Diagnostics LoadExporterConfigFile(const std::string& path, ExporterConfig& config) {
  Diagnostics errors;
  const auto text = ReadConfigFile(path, errors);
  return text ? ParseExporterConfig(*text, path, config) : errors;
}

}  // namespace pgtally
