#include "pgtally/collect/self_metrics.h"

#include <prometheus/counter.h>

#include <algorithm>

namespace pgtally {
namespace {

constexpr ErrorClass kErrorClasses[] = {ErrorClass::kTimeout, ErrorClass::kSql,
                                        ErrorClass::kConnection, ErrorClass::kMapping,
                                        ErrorClass::kLimit};
constexpr DropReason kDropReasons[] = {DropReason::kDuplicate, DropReason::kInvalidValue,
                                       DropReason::kLimit};

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
  }
  return "duplicate";
}

SelfMetrics::SelfMetrics(const std::vector<std::string>& collectors)
    : errors_(prometheus::BuildCounter()
                  .Name("pgtally_collector_errors_total")
                  .Help("Collector runs that failed, by collector and error class; details are in "
                        "the log.")
                  .Register(registry_)),
      dropped_(prometheus::BuildCounter()
                   .Name("pgtally_samples_dropped_total")
                   .Help("Samples a collector returned but pgtally left out, by reason.")
                   .Register(registry_)) {
  for (const auto& collector : collectors) {
    for (const auto error_class : kErrorClasses) {
      errors_.Add({{"collector", collector}, {"class", std::string(ToString(error_class))}});
    }
    for (const auto reason : kDropReasons) {
      dropped_.Add({{"collector", collector}, {"reason", std::string(ToString(reason))}});
    }
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
