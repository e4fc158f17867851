#include "test_exporter.h"

#include <gtest/gtest.h>

#include "pgtally/config/collector_loader.h"

namespace pgtally::testing {

std::unique_ptr<Exporter> MakeExporter(const std::string& dsn, std::string_view yaml, bool builtin,
                                       TargetOptions options,
                                       const std::vector<ParameterOverride>& parameters) {
  std::vector<CollectorSpec> collectors;
  if (builtin) {
    auto loaded = LoadCollectors({PGTALLY_SOURCE_DIR "/queries"});
    for (const auto& error : loaded.errors) ADD_FAILURE() << error.ToString();
    collectors = std::move(loaded.collectors);
  }
  if (!yaml.empty()) {
    auto loaded = ParseCollectorFile(yaml, "test.yaml");
    for (const auto& error : loaded.errors) ADD_FAILURE() << error.ToString();
    for (auto& spec : loaded.collectors) collectors.push_back(std::move(spec));
  }
  for (const auto& error : ApplyParameterOverrides(collectors, parameters)) {
    ADD_FAILURE() << error.ToString();
  }
  options.dsn = dsn;
  return std::make_unique<Exporter>(std::move(options), std::move(collectors));
}

std::string ScrapeBody(Exporter& exporter, Millis budget) {
  const auto output = exporter.Scrape(budget);
  if (!output) {
    ADD_FAILURE() << "the scrape did not finish within " << budget.count() << " ms";
    return "";
  }
  return output->Text();
}

}  // namespace pgtally::testing
