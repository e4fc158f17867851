#pragma once

#include <optional>
#include <string>
#include <vector>

#include "pgtally/config/diagnostic.h"
#include "pgtally/config/exporter_config.h"

namespace pgtally {

// What the command line says; unset fields leave the config file's (or the default) value.
struct Flags {
  // A subcommand such as "check" (see commands.h), and the arguments after it that are not
  // flags; empty for the exporter itself.
  std::string command;
  std::vector<std::string> arguments;
  std::optional<std::string> dsn;     // --dsn: overrides DATA_SOURCE_NAME and the config file
  std::optional<std::string> format;  // --format: text or json, for subcommands
  std::optional<std::string> config_file;
  std::optional<std::string> listen_address;
  std::optional<std::string> telemetry_path;
  std::optional<std::string> log_level;
  std::optional<std::string> log_format;
  std::optional<std::string> scrape_timeout;
  std::optional<std::string> password_file;
  std::optional<std::string> watch_interval;
  std::optional<std::string> shutdown_timeout;
  std::optional<std::string> web_config_file;
  bool unauthenticated_probes = false;
  std::optional<bool> builtin_collectors;
  std::vector<std::string> collector_paths;
  // postgres_exporter's custom queries files (--extend.query-path), read in its format.
  std::vector<std::string> extend_query_paths;
  std::vector<std::string> disabled_collectors;
  bool help = false;
  bool version = false;
};

// Parses --flag=value and --flag value forms, and a subcommand with its arguments when the first
// argument is one (see IsCommand). Returns an error message for an unknown flag, a missing value
// or an argument the exporter itself does not take.
std::optional<std::string> ParseFlags(const std::vector<std::string>& args, Flags& flags);

// What the environment says: DATA_SOURCE_NAME, DATA_SOURCE_PASS_FILE and, as postgres_exporter
// reads it, PG_EXPORTER_EXTEND_QUERY_PATH (empty when unset).
struct Environment {
  std::string data_source_name;
  std::string password_file;
  std::string extend_query_path;
};
Environment ReadEnvironment();

// Builds the effective configuration: defaults, then the config file, then the environment,
// then flags. Returns every problem found. A database is required unless a subcommand that can
// do without runs.
Diagnostics BuildConfig(const Flags& flags, const Environment& environment, ExporterConfig& config);

// Where the built-in collectors are: share/pgtally/queries next to the binary's bin directory
// (true both in a build tree and in an installation), else the system-wide locations.
std::string FindBuiltinCollectorsDir();

std::string UsageText();

}  // namespace pgtally
