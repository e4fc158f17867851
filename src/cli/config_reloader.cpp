#include "pgtally/cli/config_reloader.h"

#include <spdlog/spdlog.h>

#include "pgtally/config/duration.h"
#include "pgtally/log/logging.h"

namespace pgtally {
namespace {

// Settings that only take effect at start-up: a reload that changes them says so.
void WarnAboutRestartOnlyChanges(const ExporterConfig& running, const ExporterConfig& loaded) {
  const auto warn = [](const char* setting, const std::string& from, const std::string& to) {
    if (from == to) return;
    spdlog::warn(
        "setting changed but takes effect only after a restart: setting={} running={} "
        "new={}",
        setting, Quoted(from), Quoted(to));
  };
  warn("web.listen_address", running.listen_address, loaded.listen_address);
  warn("web.telemetry_path", running.telemetry_path, loaded.telemetry_path);
  warn("log.format", running.log_format == LogFormat::kJson ? "json" : "logfmt",
       loaded.log_format == LogFormat::kJson ? "json" : "logfmt");
  warn("scrape.timeout", FormatDuration(running.scrape_timeout),
       FormatDuration(loaded.scrape_timeout));
  warn("connection.max_connections", std::to_string(running.max_connections),
       std::to_string(loaded.max_connections));
}

}  // namespace

ConfigReloader::ConfigReloader(Flags flags, Environment environment, const ExporterSetup& running,
                               Exporter& exporter, ProbePool& probes)
    : flags_(std::move(flags)),
      environment_(std::move(environment)),
      running_(running.config),
      running_web_(running.web),
      exporter_(exporter),
      probes_(probes),
      connection_budget_(running.target.connection_limit),
      digest_(SetupFilesDigest(flags_, running_)) {}

void ConfigReloader::Reload(std::string_view cause) {
  // Taken before loading: a change made while loading shows up as a difference next time.
  digest_ = SetupFilesDigest(flags_, running_);
  ExporterSetup setup;
  auto errors = LoadSetup(flags_, environment_, setup);
  if (errors.empty()) {
    if (auto error = SetLogLevel(setup.config.log_level)) errors.push_back(*error);
  }
  if (!errors.empty()) {
    for (const auto& error : errors) {
      spdlog::error("config reload rejected: cause={} error={}", Quoted(cause), Quoted(error));
    }
    spdlog::error("config reload rejected; the running configuration stays: cause={} errors={}",
                  Quoted(cause), errors.size());
    exporter_.NoteReloadFailure();
    return;
  }
  WarnAboutRestartOnlyChanges(running_, setup.config);
  // The certificate and key files are read at every handshake, so renewals need nothing here;
  // the other TLS settings shape the server's TLS context, built once.
  if (running_web_.tls != setup.web.tls) {
    spdlog::warn(
        "setting changed but takes effect only after a restart: setting=tls_server_config "
        "running_tls={} new_tls={}",
        running_web_.tls.has_value(), setup.web.tls.has_value());
  }
  if (setup.web.basic_auth_users != running_web_.basic_auth_users) {
    if (apply_users_) apply_users_(setup.web.basic_auth_users);
    spdlog::info("basic authentication users changed: users={}", setup.web.basic_auth_users.size());
    running_web_.basic_auth_users = setup.web.basic_auth_users;
  }
  // The budget is the running one: connections open now count against it.
  setup.target.connection_limit = connection_budget_;
  setup.probe.budget = connection_budget_;
  probes_.Reload(std::move(setup.probe), setup.collectors);
  exporter_.Reload(std::move(setup.target), std::move(setup.collectors));
  running_ = std::move(setup.config);
  // The new config may name other files to watch.
  digest_ = SetupFilesDigest(flags_, running_);
  spdlog::info("config reloaded: cause={} target={} collectors={}", Quoted(cause),
               Quoted(exporter_.target_name()), exporter_.collector_count());
}

void ConfigReloader::ReloadIfChanged() {
  if (SetupFilesDigest(flags_, running_) != digest_) Reload("files changed");
}

}  // namespace pgtally
