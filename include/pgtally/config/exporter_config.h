#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "pgtally/config/collector_spec.h"
#include "pgtally/config/diagnostic.h"
#include "pgtally/config/duration.h"

namespace pgtally {

enum class LogFormat { kLogfmt, kJson };

// How pgtally logs in to the servers /probe reaches, named by its auth_module parameter so that
// credentials never travel in URLs. The format is postgres_exporter's (type: userpass, with
// userpass.username and .password, and options), plus password_file.
struct AuthModule {
  std::string username;
  std::string password;       // or:
  std::string password_file;  // read at every connection attempt
  // More libpq keywords, e.g. sslmode or connect_timeout; dbname is the default database.
  std::map<std::string, std::string> options;

  bool operator==(const AuthModule&) const = default;
};

// Everything pgtally is told by its config file, environment and flags (in rising precedence).
// The defaults here are the documented defaults.
struct ExporterConfig {
  // libpq connection string: a postgresql:// URI or key=value pairs.
  std::string data_source_name;
  // A file holding the password, read at every connection attempt (a mounted Secret).
  std::string password_file;

  // Collector files and directories. The built-in directory comes first unless disabled.
  bool builtin_collectors = true;
  std::string builtin_collectors_dir;  // empty: found next to the binary
  std::vector<std::string> collector_paths;
  // Custom queries files in postgres_exporter's format (its --extend.query-path).
  std::vector<std::string> extend_query_paths;
  std::vector<std::string> disabled_collectors;
  // Values for collector parameters ({{name}} in their SQL), overriding the collectors' defaults.
  std::vector<ParameterOverride> collector_parameters;
  // Cache TTLs by collector name, overriding the collectors' own (e.g. longer for size queries).
  std::vector<CacheTtlOverride> collector_cache_ttls;

  // Which databases scope: database collectors run on (POSIX extended regexes, whole-name match).
  std::string include_databases;  // empty: all that accept connections
  std::string exclude_databases;
  // How often the list of databases is read again (new databases appear, dropped ones go).
  Millis discovery_interval{60000};
  // How many databases scope: database collectors run on at once.
  int database_parallelism = 4;

  // The multi-target /probe endpoint: auth modules by name, and its pool of targets.
  std::map<std::string, AuthModule> auth_modules;
  Millis probe_idle_timeout{300000};    // a target not probed this long has its connections closed
  int probe_max_connections = 50;       // open at once, over all /probe targets
  int probe_max_targets_per_host = 10;  // kept at once for one host:port (databases, modules)
  // Which targets /probe may reach: a POSIX extended regex matching "host:port/dbname" whole.
  std::string probe_allowed_targets;  // empty: any

  Millis connect_timeout{5000};
  // Database connections pgtally holds at once, over /metrics and /probe together; from the
  // config file, at start-up only (see docs/security.md).
  int max_connections = 5;
  Millis default_collector_timeout{10000};
  Millis lock_timeout{1000};
  Millis scrape_timeout{10000};  // when the scraper sends no X-Prometheus-Scrape-Timeout-Seconds
  // Process settings, from flags only.
  Millis watch_interval{5000};    // how often the files are checked for changes; 0: never
  Millis shutdown_timeout{5000};  // how long a scrape may go on after SIGTERM

  std::string listen_address = ":9187";
  std::string telemetry_path = "/metrics";

  std::string log_level = "info";
  LogFormat log_format = LogFormat::kLogfmt;
};

// Reads a pgtally.yaml file into `config`, leaving keys it does not set untouched.
// Returns every problem found; `config` is only meaningful when none were.
Diagnostics LoadExporterConfigFile(const std::string& path, ExporterConfig& config);
Diagnostics ParseExporterConfig(std::string_view text, const std::string& filename,
                                ExporterConfig& config);

std::optional<LogFormat> ParseLogFormat(std::string_view text);

}  // namespace pgtally
