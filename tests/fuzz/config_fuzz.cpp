// libFuzzer target: arbitrary bytes as a collector file, a pgtally.yaml and a web config file.
// Loading must never crash, hang or leak, whatever the input; every problem is a diagnostic.
// And what loads without a problem makes a valid exposition on every server it could run on,
// with the self-metrics the exporter appends (exposition_check.h): the loader's name rules are
// what keeps it valid, so an input that gets past them with an invalid exposition is a finding.

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "exposition_build.h"
#include "exposition_check.h"
#include "pgtally/config/collector_loader.h"
#include "pgtally/config/exporter_config.h"
#include "pgtally/config/web_config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto loaded = pgtally::ParseCollectorFile(text, "fuzz.yaml");
  for (const auto& spec : loaded.collectors) {
    // What a scrape asks of a spec: the query for a version, its arguments, its role.
    for (const int version : {90600, 130000, 150000, 170000}) {
      if (const auto* query = spec.QueryFor(version)) (void)spec.Arguments(*query);
    }
    // What check asks of a query the server rejected: where a position in it is in the file.
    for (const auto& query : spec.queries) {
      const int length = static_cast<int>(query.sql.size());
      for (const int position : {-1, 1, length / 2 + 1, length, length + 1, length + 2}) {
        (void)query.Locate(position);
      }
    }
    (void)spec.RunsOn(true);
  }
  if (loaded.ok()) {
    for (const int version : {90600, 130000, 170000}) {
      for (const bool in_recovery : {false, true}) {
        const auto exposition =
            pgtally::fuzz::BuildExposition(loaded.collectors, version, in_recovery);
        if (!pgtally::fuzz::ExpositionProblem(exposition).empty()) __builtin_trap();
      }
    }
  }
  pgtally::ExporterConfig config;
  (void)pgtally::ParseExporterConfig(text, "fuzz.yaml", config);
  pgtally::WebConfig web;
  (void)pgtally::ParseWebConfig(text, "fuzz.yaml", web);
  return 0;
}
