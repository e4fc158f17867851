#include "pgtally/collect/exporter.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <system_error>
#include <utility>

#include "pgtally/collect/exposition.h"

namespace pgtally {
namespace {

// A request waits this much past its budget for the scrape to be written: the budget already
// leaves a margin before the scraper's own timeout (see ScrapeBudget).
constexpr Millis kAnswerGrace{100};

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

// The collectors written for the kind of target the DSN points at.
std::vector<CollectorSpec> ForTarget(std::vector<CollectorSpec> collectors,
                                     const std::string& dsn) {
  const TargetType type = TargetTypeOf(dsn);
  std::erase_if(collectors, [&](const auto& spec) { return spec.target_type != type; });
  return collectors;
}

std::string_view UpMetricName(TargetType type) {
  return type == TargetType::kPgBouncer ? "pgbouncer_up" : "pg_up";
}

std::vector<std::string> Names(const std::vector<CollectorSpec>& collectors) {
  std::vector<std::string> names;
  names.reserve(collectors.size());
  for (const auto& spec : collectors) names.push_back(spec.name);
  return names;
}

MetricFamily Gauge(std::string name, std::string help) {
  return {std::move(name), std::move(help), MetricType::Gauge, {}};
}

void AddSample(MetricFamily& family, std::vector<ClientMetric::Label> labels, double value) {
  ClientMetric metric;
  metric.label = std::move(labels);
  metric.gauge.value = value;
  family.metric.push_back(std::move(metric));
}

// The per-scrape gauges about pgtally itself, computed from this scrape only.
std::vector<MetricFamily> ScrapeMetrics(const TargetScrape& scrape, double scrape_seconds) {
  auto up = Gauge(std::string(UpMetricName(scrape.type)),
                  scrape.type == TargetType::kPgBouncer
                      ? "Whether the last scrape could connect to PgBouncer's admin console and "
                        "query it (1) or not (0)."
                      : "Whether the last scrape could connect to PostgreSQL and query it (1) or "
                        "not (0).");
  AddSample(up, {}, scrape.up ? 1 : 0);
  auto duration = Gauge("pgtally_collector_duration_seconds",
                        "Time the collector's queries took in this scrape (or in the run a cached "
                        "result came from).");
  auto success = Gauge(
      "pgtally_collector_success",
      "Whether the collector succeeded (1) or failed (0) in this scrape; see the log for why.");
  auto series = Gauge("pgtally_collector_series", "Series the collector returned in this scrape.");
  auto omitted = Gauge("pgtally_collector_rows_omitted",
                       "Rows the collector's query left out under its limit parameter in this "
                       "scrape (summed over databases), e.g. tables beyond table_limit.");
  auto skipped =
      Gauge("pgtally_collector_skipped",
            "Collectors that did not run in this scrape: reason is version, role or unavailable "
            "(an optional collector whose query failed, e.g. a missing extension).");
  for (const auto& report : scrape.reports) {
    const std::vector<ClientMetric::Label> labels = {{"collector", report.collector}};
    if (report.state == CollectorReport::State::kSkipped) {
      AddSample(skipped, {{"collector", report.collector}, {"reason", report.skip_reason}}, 1);
      continue;
    }
    AddSample(duration, labels, report.duration_seconds);
    AddSample(success, labels, report.state == CollectorReport::State::kSuccess ? 1 : 0);
    AddSample(series, labels, static_cast<double>(report.series));
    if (report.rows_omitted) AddSample(omitted, labels, *report.rows_omitted);
  }
  auto total = Gauge("pgtally_scrape_duration_seconds", "Time the whole scrape took.");
  AddSample(total, {}, scrape_seconds);
  auto build = Gauge("pgtally_build_info", "pgtally's version and source revision; always 1.");
  AddSample(build,
            {{"version", std::string(BuildVersion())}, {"revision", std::string(BuildRevision())}},
            1);

  std::vector<MetricFamily> families;
  for (auto* family : {&up, &duration, &success, &series, &omitted, &skipped, &total, &build}) {
    if (!family->metric.empty()) families.push_back(std::move(*family));
  }
  return families;
}

}  // namespace

std::string ScrapeOutput::Text() const {
  std::string text;
  text.reserve(size);
  for (const auto& part : parts) text += part;
  return text;
}

Exporter::Exporter(TargetOptions target, std::vector<CollectorSpec> collectors, bool reloads)
    : self_metrics_({}, reloads), interrupt_(std::make_shared<pg::Interrupt>()) {
  Reload(std::move(target), std::move(collectors));
}

void Exporter::Reload(TargetOptions target, std::vector<CollectorSpec> collectors) {
  auto specs = std::make_shared<const std::vector<CollectorSpec>>(
      ForTarget(std::move(collectors), target.dsn));
  self_metrics_.SetCollectors(Names(*specs));
  auto next = std::make_unique<Target>(std::move(target), specs, self_metrics_, interrupt_);
  std::lock_guard lock(mutex_);
  target_name_ = next->display_name();
  collector_count_ = specs->size();
  collectors_ = specs;
  next_target_ = std::move(next);
  self_metrics_.NoteReload(true, std::chrono::system_clock::now());
}

void Exporter::NoteReloadFailure() {
  self_metrics_.NoteReload(false, std::chrono::system_clock::now());
}

void Exporter::Stop(Millis grace) { interrupt_->Trigger(pg::Clock::now() + grace); }

std::string Exporter::target_name() const {
  std::lock_guard lock(mutex_);
  return target_name_;
}

std::size_t Exporter::collector_count() const {
  std::lock_guard lock(mutex_);
  return collector_count_;
}

std::string Exporter::FallbackBody() const {
  const std::string_view up = UpMetricName(target_->type());
  return fmt::format("# TYPE {} gauge\n{} 0\n", up, up);
}

std::optional<Exporter::Status> Exporter::last() const {
  std::lock_guard lock(mutex_);
  return last_;
}

Exporter::CollectorsView Exporter::collectors() const {
  std::lock_guard lock(mutex_);
  const bool current = last_report_ && last_report_->collectors == collectors_;
  return {collectors_, current ? last_report_ : nullptr, last_report_ && !current};
}

Exporter::~Exporter() {
  if (scrape_thread_.joinable()) scrape_thread_.join();
}

std::shared_ptr<const ScrapeOutput> Exporter::Scrape(Millis budget) {
  const auto deadline = pg::Clock::now() + budget;
  std::unique_lock lock(mutex_);
  if (in_flight_.valid()) {
    // Joining: the scrape now runs to the later of its deadline and this request's, and this
    // request waits for it no longer than its own budget.
    in_flight_deadline_->ExtendTo(deadline);
  } else {
    StartScrape(deadline, lock);
  }
  auto running = in_flight_;
  lock.unlock();
  if (running.wait_until(deadline + kAnswerGrace) != std::future_status::ready) return nullptr;
  return running.get();
}

void Exporter::StartScrape(pg::Clock::time_point deadline, std::unique_lock<std::mutex>& lock) {
  auto promise = std::make_shared<std::promise<std::shared_ptr<const ScrapeOutput>>>();
  in_flight_ = promise->get_future().share();
  auto scrape_deadline = std::make_shared<ScrapeDeadline>(deadline);
  in_flight_deadline_ = scrape_deadline;
  // The last scrape's thread cleared in_flight_ and has nothing left to do but hand its result
  // to the waiting requests, which needs no lock.
  if (scrape_thread_.joinable()) scrape_thread_.join();
  const auto run = [this, promise, scrape_deadline] {
    std::unique_ptr<Target> retired;
    {
      std::lock_guard guard(mutex_);
      if (next_target_) retired = std::exchange(target_, std::move(next_target_));
    }
    retired.reset();  // closes the old target's connections, outside the lock
    auto output = RunScrape(*scrape_deadline);
    {
      // First, so that a request arriving from now on starts a new scrape rather than get this
      // one's result: it may be the next request of a client this result was just sent to.
      std::lock_guard guard(mutex_);
      in_flight_ = {};
      in_flight_deadline_.reset();
    }
    promise->set_value(std::move(output));
  };
  // On a thread of its own rather than the request's: a request may stop waiting (its budget
  // ran out) while the scrape goes on for the others. The scrape's deep stack also lives in one
  // thread stack instead of leaving its pages resident in each HTTP worker thread in turn.
  try {
    scrape_thread_ = std::thread(run);
  } catch (const std::system_error&) {
    // No thread to be had: run it here rather than fail the waiters.
    lock.unlock();
    run();
    lock.lock();
  }
}

std::shared_ptr<const ScrapeOutput> Exporter::RunScrape(const ScrapeDeadline& deadline) {
  const auto start = pg::Clock::now();
  bool failed = false;  // by an exception: the fallback body, and the status says down
  auto output = std::make_shared<ScrapeOutput>();
  try {
    TargetScrape scrape = target_->Scrape(deadline);
    output->size += MoveToParts(std::move(scrape.families), output->parts);
    auto families =
        ScrapeMetrics(scrape, std::chrono::duration<double>(pg::Clock::now() - start).count());
    auto report = std::make_shared<CollectorsReport>();
    report->collectors = target_->collectors();
    report->finished = std::chrono::system_clock::now();
    report->up = scrape.up;
    report->server_version = scrape.server_version;
    report->in_recovery = scrape.in_recovery;
    report->reports = std::move(scrape.reports);
    Status status{scrape.up, report->finished, std::nullopt, scrape.privilege_warning};
    if (scrape.backing_off_until) {
      status.backing_off_until =
          report->finished + std::chrono::duration_cast<std::chrono::system_clock::duration>(
                                 *scrape.backing_off_until - pg::Clock::now());
    }
    {
      std::lock_guard lock(mutex_);
      last_report_ = std::move(report);
      last_ = std::move(status);
    }
    for (auto& family : self_metrics_.Collect()) families.push_back(std::move(family));
    if (extra_metrics_) {
      for (auto& family : extra_metrics_()) families.push_back(std::move(family));
    }
    std::string own;
    AppendExposition(families, own);
    output->Append(std::move(own));
    output->up = scrape.up;
  } catch (const std::exception& e) {
    // Nothing may end the process or fail the request: serve pg_up 0 and say why in the log.
    spdlog::error("scrape failed: {}", e.what());
    failed = true;
    output = std::make_shared<ScrapeOutput>();
    output->Append(FallbackBody());
  } catch (...) {
    spdlog::error("scrape failed with an unknown exception");
    failed = true;
    output = std::make_shared<ScrapeOutput>();
    output->Append(FallbackBody());
  }
  output->finished = std::chrono::system_clock::now();
  if (failed) {
    std::lock_guard lock(mutex_);
    last_ = Status{false, output->finished, std::nullopt, ""};
  }
  return output;
}

}  // namespace pgtally
