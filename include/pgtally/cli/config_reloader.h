#pragma once

#include <functional>
#include <map>
#include <string>
#include <string_view>

#include "pgtally/cli/exporter_setup.h"
#include "pgtally/cli/options.h"
#include "pgtally/collect/exporter.h"
#include "pgtally/collect/probe_pool.h"

namespace pgtally {

// Keeps a running exporter in step with its configuration files: reloads them when asked (on
// SIGHUP) and when their content changes on disk (checked by polling, which also sees the
// symlink swap Kubernetes does when it updates a mounted ConfigMap). A new setup that fails to
// load is rejected with a log line for each problem and pgtally_config_last_reload_successful 0,
// and the running one keeps serving. Not thread-safe: one thread drives it.
class ConfigReloader {
 public:
  // `running` is the setup `exporter` and `probes` were built from.
  ConfigReloader(Flags flags, Environment environment, const ExporterSetup& running,
                 Exporter& exporter, ProbePool& probes);

  // Called with the basic authentication users of every successful reload that changes them.
  void OnBasicAuthUsers(std::function<void(const std::map<std::string, std::string>&)> apply) {
    apply_users_ = std::move(apply);
  }

  // Loads the files again and, if they are valid, applies them from the next scrape on.
  void Reload(std::string_view cause);
  // Reloads if the files changed since the last load or attempt.
  void ReloadIfChanged();

 private:
  Flags flags_;
  Environment environment_;
  ExporterConfig running_;
  WebConfig running_web_;
  Exporter& exporter_;
  ProbePool& probes_;
  std::shared_ptr<ConnectionLimit> connection_budget_;  // the process's, kept across reloads
  std::function<void(const std::map<std::string, std::string>&)> apply_users_;
  std::string digest_;  // of the files at the last load or attempt
};

}  // namespace pgtally
