#pragma once

#include <string>
#include <vector>

#include "pgtally/cli/options.h"
#include "pgtally/collect/probe_pool.h"
#include "pgtally/collect/target.h"
#include "pgtally/config/collector_spec.h"
#include "pgtally/config/exporter_config.h"
#include "pgtally/config/web_config.h"

namespace pgtally {

// Everything an exporter is built from: the effective configuration, the collectors to run and
// the target options that follow from them.
struct ExporterSetup {
  ExporterConfig config;
  std::vector<CollectorSpec> collectors;
  TargetOptions target;
  ProbeOptions probe;  // for /probe's targets
  WebConfig web;       // from --web.config.file
};

// Reads the config file and the collector files that flags and environment name, applies the
// overrides and checks the result. Returns every problem found, one line each naming the file
// and place (secrets masked); `setup` is only meaningful when there are none. Used at start-up
// and for every reload.
std::vector<std::string> LoadSetup(const Flags& flags, const Environment& environment,
                                   ExporterSetup& setup);

// A digest of the content of every file a setup with `config` reads: the config file and each
// collector file, including which files the collector directories hold. A different digest
// means the files changed on disk.
std::string SetupFilesDigest(const Flags& flags, const ExporterConfig& config);

}  // namespace pgtally
