// pgtally: parse flags, build the exporter and its HTTP server, serve until SIGINT or SIGTERM.

#include <fmt/format.h>
#include <malloc.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <regex>

#include "pgtally/cli/options.h"
#include "pgtally/collect/exporter.h"
#include "pgtally/config/collector_loader.h"
#include "pgtally/http/http_server.h"
#include "pgtally/log/logging.h"
#include "pgtally/pg/dsn.h"

namespace {

int Fail(const std::string& message) {
  std::fprintf(stderr, "pgtally: %s\n", pgtally::ScrubSecrets(message).c_str());
  return 1;
}

// A whole-name database filter; an empty pattern means no filter.
std::optional<std::regex> CompileFilter(const std::string& pattern, const char* key,
                                        std::string& error) {
  if (pattern.empty()) return std::nullopt;
  try {
    return std::regex(pattern, std::regex::extended);
  } catch (const std::regex_error& e) {
    error = fmt::format("databases.{}: \"{}\" is not a valid regular expression: {}", key, pattern,
                        e.what());
    return std::nullopt;
  }
}

int Run(int argc, char** argv) {
  using namespace pgtally;
  Flags flags;
  if (auto error = ParseFlags(std::vector<std::string>(argv + 1, argv + argc), flags)) {
    std::fprintf(stderr, "pgtally: %s\n", error->c_str());
    return 2;
  }
  if (flags.help) {
    std::fputs(UsageText().c_str(), stdout);
    return 0;
  }
  if (flags.version) {
    std::printf("pgtally version %s (revision %s)\n", BuildVersion().data(),
                BuildRevision().data());
    return 0;
  }

  ExporterConfig config;
  const auto config_errors = BuildConfig(flags, std::getenv("DATA_SOURCE_NAME"), config);
  if (auto password = pg::DsnPassword(config.data_source_name)) AddSecret(*password);
  if (!config_errors.empty()) {
    for (const auto& error : config_errors) Fail(error.ToString());
    return 1;
  }
  if (auto error = SetupLogging(config.log_level, config.log_format)) return Fail(*error);
  if (auto error = pg::DsnError(config.data_source_name)) {
    return Fail(fmt::format("DATA_SOURCE_NAME is not a valid connection string: {}", *error));
  }

  std::vector<std::string> paths;
  if (config.builtin_collectors) {
    paths.push_back(config.builtin_collectors_dir.empty() ? FindBuiltinCollectorsDir()
                                                          : config.builtin_collectors_dir);
  }
  paths.insert(paths.end(), config.collector_paths.begin(), config.collector_paths.end());
  auto loaded = LoadCollectors(paths);
  if (!loaded.ok()) {
    for (const auto& error : loaded.errors) Fail(error.ToString());
    return Fail(fmt::format("{} error(s) in collector files; not starting", loaded.errors.size()));
  }
  if (auto errors = ApplyParameterOverrides(loaded.collectors, config.collector_parameters);
      !errors.empty()) {
    for (const auto& error : errors) Fail(error.ToString());
    return Fail("unknown collector parameters in the config file; not starting");
  }
  if (auto errors = ApplyCacheTtlOverrides(loaded.collectors, config.collector_cache_ttls);
      !errors.empty()) {
    for (const auto& error : errors) Fail(error.ToString());
    return Fail("unknown collectors in the config file's cache_ttl; not starting");
  }
  for (const auto& name : config.disabled_collectors) {
    const auto removed =
        std::erase_if(loaded.collectors, [&](const auto& spec) { return spec.name == name; });
    if (removed == 0) spdlog::warn("cannot disable unknown collector: collector={}", Quoted(name));
  }

  TargetOptions target;
  target.dsn = config.data_source_name;
  target.connect_timeout = config.connect_timeout;
  target.default_timeout = config.default_collector_timeout;
  target.lock_timeout = config.lock_timeout;
  target.discovery_interval = config.discovery_interval;
  std::string regex_error;
  target.include_databases = CompileFilter(config.include_databases, "include", regex_error);
  target.exclude_databases = CompileFilter(config.exclude_databases, "exclude", regex_error);
  if (!regex_error.empty()) return Fail(regex_error);

  // Block the stop signals before any thread starts, so only sigwait below receives them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  std::signal(SIGPIPE, SIG_IGN);

  Exporter exporter(std::move(target), std::move(loaded.collectors));
  std::unique_ptr<HttpServer> server;
  try {
    server = std::make_unique<HttpServer>(
        HttpOptions{config.listen_address, config.telemetry_path, config.scrape_timeout}, exporter);
  } catch (const std::exception& e) {
    return Fail(e.what());
  }
  std::string ports;
  for (const int port : server->ports()) {
    ports += fmt::format("{}{}", ports.empty() ? "" : ",", port);
  }
  spdlog::info(
      "pgtally started: version={} listen={} ports={} telemetry_path={} target={} collectors={}",
      BuildVersion(), Quoted(config.listen_address), ports, Quoted(config.telemetry_path),
      Quoted(exporter.target_name()), exporter.collector_count());

  int signal = 0;
  sigwait(&stop_signals, &signal);
  spdlog::info("pgtally stopping: signal={}", signal);
  server.reset();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  // Scrapes run one at a time, but on whichever CivetWeb thread asked, and glibc gives each
  // thread its own malloc arena that keeps its peak: with 50,000 series that was 276 MB of RSS
  // instead of 59 MB (bench/catalog-scale.sh). One arena costs no measurable latency here.
  mallopt(M_ARENA_MAX, 1);
  try {
    return Run(argc, argv);
  } catch (const std::exception& e) {
    return Fail(e.what());
  }
}
