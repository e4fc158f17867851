#include "pgtally/collect/self_metrics.h"

#include <prometheus/counter.h>

#include <algorithm>

namespace pgtally {
namespace {

constexpr ErrorClass kErrorClasses[] = {ErrorClass::kTimeout, ErrorClass::kSql,
                                        ErrorClass::kConnection, ErrorClass::kMapping,
                                        ErrorClass::kLimit};
constexpr DropReason kDropReasons[] = {DropReason::kDuplicate, DropReason::kInvalidValue,
                                       DropReason::kLimit, DropReason::kTooLarge};

}  // namespace

std::string_view ToString(ErrorClass error_class) {
  switch (error_class) {
    case ErrorClass::kTimeout:
      return "timeout";
    case ErrorClass::kSql:
      return "sql";
    case ErrorClass::kConnection:
      return "connection";
    case ErrorClass::kMapping:
      return "mapping";
    case ErrorClass::kLimit:
      return "limit";
  }
  return "sql";
}

std::string_view ToString(DropReason reason) {
  switch (reason) {
    case DropReason::kDuplicate:
      return "duplicate";
    case DropReason::kInvalidValue:
      return "invalid_value";
    case DropReason::kLimit:
      return "limit";
    case DropReason::kTooLarge:
      return "too_large";
  }
  return "duplicate";
}

SelfMetrics::SelfMetrics(const std::vector<std::string>& collectors, bool reloads)
    : errors_(prometheus::BuildCounter()
                  .Name("pgtally_collector_errors_total")
                  .Help("Collector runs that failed, by collector and error class; details are in "
                        "the log.")
                  .Register(registry_)),
      dropped_(prometheus::BuildCounter()
                   .Name("pgtally_samples_dropped_total")
                   .Help("Samples a collector returned but pgtally left out, by reason.")
                   .Register(registry_)) {
  if (reloads) {
    reload_successful_ = &prometheus::BuildGauge()
                              .Name("pgtally_config_last_reload_successful")
                              .Help(
                                  "Whether the last attempt to load the configuration and "
                                  "collector files succeeded (1) or was rejected (0).")
                              .Register(registry_)
                              .Add({});
    reload_success_time_ = &prometheus::BuildGauge()
                                .Name("pgtally_config_last_reload_success_timestamp_seconds")
                                .Help("When the configuration was last loaded successfully.")
                                .Register(registry_)
                                .Add({});
  }
  SetCollectors(collectors);
}

void SelfMetrics::SetCollectors(const std::vector<std::string>& collectors) {
  std::lock_guard lock(mutex_);
  const std::set<std::string> wanted(collectors.begin(), collectors.end());
  for (const auto& collector : wanted) {
    if (!collectors_.contains(collector)) AddCollector(collector);
  }
  for (const auto& collector : collectors_) {
    if (!wanted.contains(collector)) RemoveCollector(collector);
  }
  collectors_ = wanted;
}

std::vector<std::pair<prometheus::Family<prometheus::Counter>*, prometheus::Labels>>
SelfMetrics::SeriesOf(const std::string& collector) {
  std::vector<std::pair<prometheus::Family<prometheus::Counter>*, prometheus::Labels>> series;
  for (const auto error_class : kErrorClasses) {
    series.push_back(
        {&errors_, {{"collector", collector}, {"class", std::string(ToString(error_class))}}});
  }
  for (const auto reason : kDropReasons) {
    series.push_back(
        {&dropped_, {{"collector", collector}, {"reason", std::string(ToString(reason))}}});
  }
  return series;
}

void SelfMetrics::AddCollector(const std::string& collector) {
  for (const auto& [family, labels] : SeriesOf(collector)) family->Add(labels);
}

void SelfMetrics::RemoveCollector(const std::string& collector) {
  for (const auto& [family, labels] : SeriesOf(collector)) family->Remove(&family->Add(labels));
}

void SelfMetrics::NoteReload(bool success, std::chrono::system_clock::time_point when) {
  if (!reload_successful_) return;
  reload_successful_->Set(success ? 1 : 0);
  if (success) {
    reload_success_time_->Set(std::chrono::duration<double>(when.time_since_epoch()).count());
  }
}

void SelfMetrics::CountError(const std::string& collector, ErrorClass error_class, double count) {
  errors_.Add({{"collector", collector}, {"class", std::string(ToString(error_class))}})
      .Increment(count);
}

void SelfMetrics::CountDropped(const std::string& collector, DropReason reason, double count) {
  dropped_.Add({{"collector", collector}, {"reason", std::string(ToString(reason))}})
      .Increment(count);
}

std::vector<prometheus::MetricFamily> SelfMetrics::Collect() const {
  auto families = registry_.Collect();
  // The registry keeps series in hash order; sorted output is easier to read and to diff.
  for (auto& family : families) {
    std::sort(family.metric.begin(), family.metric.end(),
              [](const auto& a, const auto& b) { return a.label < b.label; });
  }
  return families;
}

}  // namespace pgtally
