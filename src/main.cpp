// pgtally: parse flags, load the configuration, build the exporter and its HTTP server, then
// serve: reload on SIGHUP or when the files change, stop gracefully on SIGINT or SIGTERM.

#include <fmt/format.h>
#include <malloc.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <ctime>
#include <thread>

#include "pgtally/cli/commands.h"
#include "pgtally/cli/config_reloader.h"
#include "pgtally/cli/exporter_setup.h"
#include "pgtally/cli/options.h"
#include "pgtally/collect/exporter.h"
#include "pgtally/http/http_server.h"
#include "pgtally/log/logging.h"

namespace {

using namespace pgtally;

int Fail(const std::string& message) {
  std::fprintf(stderr, "pgtally: %s\n", ScrubSecrets(message).c_str());
  return 1;
}

// If stopping takes this much longer than the shutdown timeout, something is stuck: exit anyway,
// so that a restart is never held up by pgtally.
constexpr Millis kStopMargin{5000};

// Waits for signals until SIGINT or SIGTERM, reloading on SIGHUP and, every `watch_interval`,
// when the files changed. Returns the stop signal.
int ServeUntilStopped(const sigset_t& signals, Millis watch_interval, ConfigReloader& reloader) {
  while (true) {
    int signal = 0;
    if (watch_interval.count() > 0) {
      const timespec timeout{static_cast<std::time_t>(watch_interval.count() / 1000),
                             static_cast<long>(watch_interval.count() % 1000) * 1'000'000};
      signal = sigtimedwait(&signals, nullptr, &timeout);
    } else {
      sigwait(&signals, &signal);
    }
    if (signal == SIGHUP) {
      reloader.Reload("SIGHUP");
    } else if (signal == SIGINT || signal == SIGTERM) {
      return signal;
    } else if (signal < 0) {
      reloader.ReloadIfChanged();  // the interval passed (or a stray EINTR)
    }
  }
}

int Run(int argc, char** argv) {
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
  if (!flags.command.empty()) return RunCommand(flags);

  const Environment environment = ReadEnvironment();
  ExporterSetup setup;
  if (const auto errors = LoadSetup(flags, environment, setup); !errors.empty()) {
    for (const auto& error : errors) Fail(error);
    return Fail(fmt::format("{} problem(s) in the configuration; not starting", errors.size()));
  }
  const ExporterConfig& config = setup.config;
  if (auto error = SetupLogging(config.log_level, config.log_format)) return Fail(*error);

  // Block these before any thread starts, so that only the wait below receives them.
  sigset_t signals;
  sigemptyset(&signals);
  for (const int signal : {SIGINT, SIGTERM, SIGHUP}) sigaddset(&signals, signal);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  std::signal(SIGPIPE, SIG_IGN);

  // One budget for every connection to a database, whoever opens it.
  setup.target.connection_limit =
      std::make_shared<ConnectionLimit>(config.max_connections, "connection.max_connections");
  setup.probe.budget = setup.target.connection_limit;
  Exporter exporter(setup.target, setup.collectors);
  ProbePool probes(setup.probe, setup.collectors);
  exporter.SetExtraMetrics([&probes] { return probes.Metrics(); });
  ConfigReloader reloader(flags, environment, setup, exporter, probes);
  std::unique_ptr<HttpServer> server;
  try {
    HttpOptions http;
    http.listen_address = config.listen_address;
    http.telemetry_path = config.telemetry_path;
    http.default_scrape_timeout = config.scrape_timeout;
    http.web = setup.web;
    http.unauthenticated_probes = flags.unauthenticated_probes;
    server = std::make_unique<HttpServer>(http, exporter, &probes);
    reloader.OnBasicAuthUsers([&server](const auto& users) { server->SetBasicAuthUsers(users); });
  } catch (const std::exception& e) {
    return Fail(e.what());
  }
  std::string ports;
  for (const int port : server->ports()) {
    ports += fmt::format("{}{}", ports.empty() ? "" : ",", port);
  }
  spdlog::info(
      "pgtally started: version={} listen={} ports={} tls={} basic_auth={} telemetry_path={} "
      "target={} collectors={} auth_modules={}",
      BuildVersion(), Quoted(config.listen_address), ports, setup.web.tls.has_value(),
      !setup.web.basic_auth_users.empty(), Quoted(config.telemetry_path),
      Quoted(exporter.target_name()), exporter.collector_count(), setup.probe.auth_modules.size());

  const int signal = ServeUntilStopped(signals, config.watch_interval, reloader);
  spdlog::info("pgtally stopping: signal={} shutdown_timeout={}", signal,
               FormatDuration(config.shutdown_timeout));
  std::thread([limit = config.shutdown_timeout + kStopMargin] {
    std::this_thread::sleep_for(limit);
    std::fprintf(stderr, "pgtally: still stopping after %lld ms; exiting anyway\n",
                 static_cast<long long>(limit.count()));
    _exit(1);
  }).detach();
  // The scrape in progress ends within the timeout and its answer is sent; then the server stops
  // and the exporter closes its database connections.
  exporter.Stop(config.shutdown_timeout);
  probes.Stop(config.shutdown_timeout);
  if (!server->Drain(std::chrono::steady_clock::now() + config.shutdown_timeout + Millis(1000))) {
    spdlog::warn("requests still in progress at the shutdown timeout; stopping anyway");
  }
  server.reset();
  spdlog::info("pgtally stopped");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  // Scrapes run one at a time, but on whichever CivetWeb thread asked, and glibc gives each
  // thread its own malloc arena that keeps its peak: with 50,000 series that was 276 MB of RSS
  // instead of 59 MB (bench/catalog-scale.sh). One arena costs no measurable latency here.
  mallopt(M_ARENA_MAX, 1);
  // A fixed threshold instead of glibc's sliding one, which rises to the largest block ever
  // freed: a scrape's large strings (a family's lines, the gzip output) are then mapped and
  // unmapped on their own instead of fragmenting the heap. Peak RSS on the 5,000-table
  // benchmark: 23.6 -> 22.9 MB, steady 22.5 -> 20.5 MB.
  mallopt(M_MMAP_THRESHOLD, 128 * 1024);
  mallopt(M_TRIM_THRESHOLD, 128 * 1024);
  try {
    return Run(argc, argv);
  } catch (const std::exception& e) {
    return Fail(e.what());
  }
}
