#include "pgtally/cli/options.h"

#include <fmt/format.h>
#include <unistd.h>

#include <array>
#include <cstdlib>
#include <filesystem>

#include "pgtally/cli/commands.h"

namespace pgtally {
namespace {

void SplitInto(const std::string& list, std::vector<std::string>& into) {
  std::size_t start = 0;
  while (start <= list.size()) {
    const auto comma = std::min(list.find(',', start), list.size());
    if (comma > start) into.push_back(list.substr(start, comma - start));
    start = comma + 1;
  }
}

}  // namespace

std::string UsageText() {
  return R"(Usage: pgtally [flags]
       pgtally COMMAND [flags] [arguments]

PostgreSQL exporter for Prometheus. Runs SQL collectors from YAML files on every scrape.

The database is DATA_SOURCE_NAME (a postgresql:// URI or a key=value libpq string), or
data_source_name in the config file. Flags override the config file.

Flags:
  --config FILE                  pgtally.yaml with connection, collectors, web and log settings
  --web.listen-address ADDR      address to serve on (default ":9187")
  --web.telemetry-path PATH      path of the metrics endpoint (default "/metrics")
  --web.config.file FILE         TLS and basic authentication, in the Prometheus exporter-toolkit
                                 format (tls_server_config, basic_auth_users); see
                                 docs/security.md
  --web.unauthenticated-probes   serve /healthz and /readyz without basic authentication
  --collectors.path PATH         another collector file or directory; repeatable
  --[no-]collectors.builtin      load the built-in collectors (default on)
  --collectors.disable NAMES     collectors not to run, comma-separated; repeatable
  --scrape.timeout DURATION      scrape budget when Prometheus sends no timeout header (default 10s)
  --connection.password-file FILE
                                 read the password from FILE at every connection attempt, so a
                                 rotated password is used without a restart (also
                                 DATA_SOURCE_PASS_FILE)
  --config.watch-interval DURATION
                                 how often to check the config and collector files for changes
                                 and reload them; 0 turns it off (default 5s). SIGHUP reloads too
  --shutdown.timeout DURATION    on SIGTERM, how long a scrape in progress may take to finish
                                 (default 5s)
  --log.level LEVEL              debug, info, warn or error (default info)
  --log.format FORMAT            logfmt or json (default logfmt)
  --extend.query-path FILE       a custom queries file in postgres_exporter's format, exported
                                 under the same names and labels; repeatable
  --dsn DSN                      the database, instead of DATA_SOURCE_NAME (for commands: the
                                 process list shows it, so keep passwords out of it)
  --help                         show this help
  --version                      show the version

Commands, for writing collectors (docs/authoring.md):
  check [--format json]          validate the config and collector files, all problems at once;
                                 with a database, also ask PostgreSQL to describe each query.
                                 Exit code 1 when a problem is found
  run-collector NAME             run one collector once; print its series and the time taken
  convert FILE...                print postgres_exporter or pg_exporter collector files in
                                 pgtally's format
  test FILE...                   run collectors on the fixture rows of test files (*.test.yaml)
                                 and compare with the expected output; no database needed
  docs                           print the metrics reference of the loaded collectors (Markdown)
)";
}

std::optional<std::string> ParseFlags(const std::vector<std::string>& args, Flags& flags) {
  for (std::size_t i = 0; i < args.size(); ++i) {
    std::string name = args[i];
    if (!name.starts_with('-') || name == "-") {
      if (i == 0 && IsCommand(name)) {
        flags.command = name;
      } else if (!flags.command.empty()) {
        flags.arguments.push_back(name);
      } else {
        return fmt::format("unexpected argument \"{}\"; see --help", name);
      }
      continue;
    }
    std::optional<std::string> inline_value;
    if (const auto eq = name.find('='); eq != std::string::npos && name.starts_with("--")) {
      inline_value = name.substr(eq + 1);
      name.resize(eq);
    }
    if (name == "-h" || name == "--help") {
      flags.help = true;
      continue;
    }
    if (name == "--version") {
      flags.version = true;
      continue;
    }
    if (name == "--web.unauthenticated-probes") {
      if (inline_value) return fmt::format("{} takes no value", name);
      flags.unauthenticated_probes = true;
      continue;
    }
    if (name == "--collectors.builtin" || name == "--no-collectors.builtin") {
      if (inline_value) return fmt::format("{} takes no value", name);
      flags.builtin_collectors = name == "--collectors.builtin";
      continue;
    }
    const auto value = [&]() -> std::optional<std::string> {
      if (inline_value) return inline_value;
      if (i + 1 < args.size()) return args[++i];
      return std::nullopt;
    };
    std::optional<std::string>* single = nullptr;
    if (name == "--config") {
      single = &flags.config_file;
    } else if (name == "--web.listen-address") {
      single = &flags.listen_address;
    } else if (name == "--web.telemetry-path") {
      single = &flags.telemetry_path;
    } else if (name == "--log.level") {
      single = &flags.log_level;
    } else if (name == "--log.format") {
      single = &flags.log_format;
    } else if (name == "--scrape.timeout") {
      single = &flags.scrape_timeout;
    } else if (name == "--connection.password-file") {
      single = &flags.password_file;
    } else if (name == "--config.watch-interval") {
      single = &flags.watch_interval;
    } else if (name == "--shutdown.timeout") {
      single = &flags.shutdown_timeout;
    } else if (name == "--web.config.file") {
      single = &flags.web_config_file;
    } else if (name == "--dsn") {
      single = &flags.dsn;
    } else if (name == "--format") {
      single = &flags.format;
    } else if (name != "--collectors.path" && name != "--collectors.disable" &&
               name != "--extend.query-path") {
      return fmt::format("unknown flag \"{}\"; see --help", name);
    }
    const auto given = value();
    if (!given) return fmt::format("flag {} needs a value", name);
    if (single) {
      *single = *given;
    } else if (name == "--collectors.path") {
      flags.collector_paths.push_back(*given);
    } else if (name == "--extend.query-path") {
      flags.extend_query_paths.push_back(*given);
    } else {
      SplitInto(*given, flags.disabled_collectors);
    }
  }
  return std::nullopt;
}

Environment ReadEnvironment() {
  const auto get = [](const char* name) {
    const char* value = std::getenv(name);
    return std::string(value ? value : "");
  };
  return {get("DATA_SOURCE_NAME"), get("DATA_SOURCE_PASS_FILE"),
          get("PG_EXPORTER_EXTEND_QUERY_PATH")};
}

Diagnostics BuildConfig(const Flags& flags, const Environment& environment,
                        ExporterConfig& config) {
  Diagnostics errors;
  if (flags.config_file) errors = LoadExporterConfigFile(*flags.config_file, config);
  const auto flag_error = [&](std::string message) {
    errors.push_back({{"command line", 0, 0}, std::move(message)});
  };
  const auto duration_flag = [&](const std::optional<std::string>& value, const char* name,
                                 bool zero_allowed, Millis& into) {
    if (!value) return;
    if (auto duration = ParseDuration(*value);
        duration && (zero_allowed || duration->count() > 0)) {
      into = *duration;
    } else {
      flag_error(fmt::format("{} must be a duration such as 10s, not \"{}\"", name, *value));
    }
  };

  if (!environment.data_source_name.empty()) config.data_source_name = environment.data_source_name;
  if (flags.dsn) config.data_source_name = *flags.dsn;
  if (!environment.password_file.empty()) config.password_file = environment.password_file;
  if (flags.password_file) config.password_file = *flags.password_file;
  if (!flags.extend_query_paths.empty()) {
    config.extend_query_paths.insert(config.extend_query_paths.end(),
                                     flags.extend_query_paths.begin(),
                                     flags.extend_query_paths.end());
  } else if (!environment.extend_query_path.empty()) {
    config.extend_query_paths.push_back(environment.extend_query_path);
  }
  if (flags.listen_address) config.listen_address = *flags.listen_address;
  if (flags.telemetry_path) config.telemetry_path = *flags.telemetry_path;
  if (flags.log_level) config.log_level = *flags.log_level;
  if (flags.log_format) {
    if (auto format = ParseLogFormat(*flags.log_format)) {
      config.log_format = *format;
    } else {
      flag_error(fmt::format("--log.format must be logfmt or json, not \"{}\"", *flags.log_format));
    }
  }
  duration_flag(flags.scrape_timeout, "--scrape.timeout", false, config.scrape_timeout);
  duration_flag(flags.watch_interval, "--config.watch-interval", true, config.watch_interval);
  duration_flag(flags.shutdown_timeout, "--shutdown.timeout", true, config.shutdown_timeout);
  if (flags.builtin_collectors) config.builtin_collectors = *flags.builtin_collectors;
  config.collector_paths.insert(config.collector_paths.end(), flags.collector_paths.begin(),
                                flags.collector_paths.end());
  config.disabled_collectors.insert(config.disabled_collectors.end(),
                                    flags.disabled_collectors.begin(),
                                    flags.disabled_collectors.end());

  // Of the subcommands only run-collector needs a database; check uses one when given.
  const bool needs_database = flags.command.empty() || flags.command == "run-collector";
  if (config.data_source_name.empty() && needs_database) {
    flag_error(
        "no database to connect to: set DATA_SOURCE_NAME (for example "
        "postgresql://user@host:5432/db) "
        "or data_source_name in the config file");
  }
  if (!config.telemetry_path.starts_with('/') || config.telemetry_path == "/" ||
      config.telemetry_path == "/healthz" || config.telemetry_path == "/readyz") {
    flag_error(fmt::format(
        "the telemetry path must start with / and not be /, /healthz or /readyz, not \"{}\"",
        config.telemetry_path));
  }
  return errors;
}

std::string FindBuiltinCollectorsDir() {
  namespace fs = std::filesystem;
  std::error_code error;
  const auto exe = fs::read_symlink("/proc/self/exe", error);
  std::vector<fs::path> candidates;
  if (!error) candidates.push_back(exe.parent_path().parent_path() / "share/pgtally/queries");
  candidates.emplace_back("/usr/local/share/pgtally/queries");
  candidates.emplace_back("/usr/share/pgtally/queries");
  for (const auto& dir : candidates) {
    if (fs::is_directory(dir, error)) return dir.lexically_normal().string();
  }
  return candidates.front().string();
}

}  // namespace pgtally
