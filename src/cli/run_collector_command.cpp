// pgtally run-collector NAME: runs one collector once against the configured database, exactly
// as a scrape would (same Target, same options, same deadline), and prints its series.
//
// Standard output gets only the exposition text, so it can be piped to `promtool check metrics`
// or diffed; what happened (state, query variant, time, series, the error) goes to standard
// error, after the log lines the scrape wrote there.

#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <memory>

#include "pgtally/cli/commands.h"
#include "pgtally/cli/exporter_setup.h"
#include "pgtally/collect/exposition.h"
#include "pgtally/collect/target.h"
#include "pgtally/log/logging.h"

namespace pgtally {
namespace {

// Levenshtein distance, for suggesting the collector a typo meant.
std::size_t EditDistance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diagonal = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

// Up to five loaded collector names close to `name`: containing it, or a few edits away.
std::vector<std::string> SimilarNames(const std::vector<CollectorSpec>& collectors,
                                      const std::string& name) {
  std::vector<std::pair<std::size_t, std::string>> scored;
  const std::size_t tolerance = std::max<std::size_t>(2, name.size() / 3);
  for (const auto& spec : collectors) {
    const std::size_t distance = EditDistance(name, spec.name);
    if (distance <= tolerance || spec.name.find(name) != std::string::npos) {
      scored.emplace_back(distance, spec.name);
    }
  }
  std::sort(scored.begin(), scored.end());
  std::vector<std::string> names;
  for (std::size_t i = 0; i < scored.size() && i < 5; ++i) names.push_back(scored[i].second);
  return names;
}

// Which of the collector's queries a server of this version runs.
std::string DescribeVariant(const CollectorSpec& spec, int server_version) {
  const QueryVariant* query = spec.QueryFor(server_version);
  if (!query) return fmt::format("none for server_version_num {}", server_version);
  if (spec.queries.size() == 1) return "the collector's only query";
  return fmt::format("variant {} of {} ({}), for server_version_num {}",
                     query - spec.queries.data() + 1, spec.queries.size(),
                     ToString(query->versions), server_version);
}

std::string SkipReason(const CollectorSpec& spec, const CollectorReport& report,
                       const TargetScrape& scrape) {
  if (report.skip_reason == "version") {
    if (!spec.versions.Contains(scrape.server_version.value_or(0))) {
      return fmt::format("version: the collector has {}; the server is {}", ToString(spec.versions),
                         scrape.server_version.value_or(0));
    }
    std::string ranges;
    for (const auto& query : spec.queries) {
      ranges += fmt::format("{}{}", ranges.empty() ? "" : "; ", ToString(query.versions));
    }
    return fmt::format("version: no query of the collector is for server_version_num {} ({})",
                       scrape.server_version.value_or(0), ranges);
  }
  if (report.skip_reason == "role") {
    return fmt::format("role: the collector runs on {} servers only and this one is {}",
                       ToString(spec.role), scrape.in_recovery ? "a standby" : "a primary");
  }
  if (report.skip_reason == "unavailable") {
    return fmt::format("unavailable: the optional collector's query failed: {}", report.error);
  }
  return report.skip_reason;
}

std::string_view StateName(CollectorReport::State state) {
  switch (state) {
    case CollectorReport::State::kSuccess:
      return "success";
    case CollectorReport::State::kFailed:
      return "failed";
    case CollectorReport::State::kSkipped:
      break;
  }
  return "skipped";
}

// "key:  value", with the further lines of a value (a server error's LINE and HINT) indented
// under its first.
void PrintLine(std::string_view key, std::string_view value) {
  std::string text = fmt::format("{:<13} ", std::string(key) + ":");
  for (const char c : value) {
    text += c;
    if (c == '\n') text += std::string(14, ' ');
  }
  text += '\n';
  std::fputs(ScrubSecrets(text).c_str(), stderr);
}

}  // namespace

int RunCollectorCommand(const Flags& flags) {
  if (flags.format) {
    std::fprintf(stderr, "pgtally %s: --format is for pgtally check only\n", flags.command.c_str());
    return 2;
  }
  if (flags.arguments.size() != 1) {
    std::fprintf(stderr, "usage: pgtally run-collector NAME [--dsn DSN] [--config FILE] ...\n");
    return 2;
  }
  const std::string& name = flags.arguments.front();
  // The scrape logs (a failed query, the database down) go to stderr, never among the series.
  SetupLogging("info", LogFormat::kLogfmt);
  ExporterSetup setup;
  if (const auto errors = LoadSetup(flags, ReadEnvironment(), setup); !errors.empty()) {
    for (const auto& error : errors) std::fprintf(stderr, "%s\n", error.c_str());
    std::fprintf(stderr, "pgtally run-collector: %zu problem(s) in the configuration\n",
                 errors.size());
    return 2;
  }
  if (auto error = SetupLogging(setup.config.log_level, setup.config.log_format)) {
    std::fprintf(stderr, "pgtally run-collector: %s\n", error->c_str());
    return 2;
  }

  const auto found = std::find_if(setup.collectors.begin(), setup.collectors.end(),
                                  [&](const CollectorSpec& spec) { return spec.name == name; });
  if (found == setup.collectors.end()) {
    std::string message = fmt::format("pgtally run-collector: no collector named \"{}\"", name);
    const auto similar = SimilarNames(setup.collectors, name);
    for (std::size_t i = 0; i < similar.size(); ++i) {
      message += fmt::format("{}{}", i == 0 ? "; did you mean " : ", ", similar[i]);
    }
    if (similar.empty()) {
      message += fmt::format(" among the {} loaded (see pgtally docs)", setup.collectors.size());
    }
    std::fprintf(stderr, "%s?\n", message.c_str());
    return 2;
  }
  const CollectorSpec spec = *found;

  SelfMetrics self_metrics({spec.name}, false);
  Target target(setup.target, std::make_shared<const std::vector<CollectorSpec>>(1, spec),
                self_metrics);
  PrintLine("collector", fmt::format("{} ({})", spec.name, spec.location.ToString()));
  PrintLine("target", target.display_name());
  if (spec.target_type != target.type()) {
    PrintLine("state", fmt::format("skipped: the collector is for {} and the DSN points at {}",
                                   ToString(spec.target_type), ToString(target.type())));
    return 1;
  }

  const auto deadline = pg::Clock::now() + setup.config.scrape_timeout;
  TargetScrape scrape = target.Scrape(ScrapeDeadline(deadline));
  std::string text;
  AppendFamilies(scrape.families, text);
  std::fwrite(text.data(), 1, text.size(), stdout);
  std::fflush(stdout);

  if (!scrape.up) {
    PrintLine("state", "not run: the database is down (pg_up 0)");
    PrintLine("error", scrape.error);
    return 1;
  }
  const auto report = std::find_if(scrape.reports.begin(), scrape.reports.end(),
                                   [&](const auto& r) { return r.collector == spec.name; });
  if (report == scrape.reports.end()) {
    PrintLine("state", "not run");
    return 1;
  }
  PrintLine("server", fmt::format("server_version_num {}, {}", scrape.server_version.value_or(0),
                                  scrape.in_recovery ? "standby" : "primary"));
  if (report->state == CollectorReport::State::kSkipped) {
    PrintLine("state", fmt::format("skipped ({})", SkipReason(spec, *report, scrape)));
    return 1;
  }
  PrintLine("state", StateName(report->state));
  if (report->state == CollectorReport::State::kFailed) PrintLine("error", report->error);
  PrintLine("query", DescribeVariant(spec, scrape.server_version.value_or(0)));
  PrintLine("duration", fmt::format("{:.3f} s (scrape timeout {})", report->duration_seconds,
                                    FormatDuration(setup.config.scrape_timeout)));
  PrintLine("series", fmt::format("{} (max_series {})", report->series, spec.max_series));
  if (report->rows_omitted) {
    PrintLine("rows omitted", fmt::format("{} (left out by the query's own limit; column \"{}\")",
                                          *report->rows_omitted, spec.omitted_rows_column));
  }
  return report->state == CollectorReport::State::kSuccess ? 0 : 1;
}

}  // namespace pgtally
