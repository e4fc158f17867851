#pragma once

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/metric_family.h>
#include <prometheus/registry.h>

#include <string>
#include <string_view>
#include <vector>

namespace pgtally {

// The fixed set of reasons a collector fails; the details go to the log, never into labels.
enum class ErrorClass { kTimeout, kSql, kConnection, kMapping, kLimit };
std::string_view ToString(ErrorClass error_class);

// Why samples were left out of a collector's result.
enum class DropReason { kDuplicate, kInvalidValue, kLimit };
std::string_view ToString(DropReason reason);

// The exporter's own counters, which must outlive a single scrape. Per-scrape gauges (pg_up,
// durations, success) are computed fresh by each scrape instead. Thread-safe.
class SelfMetrics {
 public:
  // Creates every {collector, class} series at zero, so rate() sees the first error.
  explicit SelfMetrics(const std::vector<std::string>& collectors);

  void CountError(const std::string& collector, ErrorClass error_class, double count = 1);
  void CountDropped(const std::string& collector, DropReason reason, double count);

  std::vector<prometheus::MetricFamily> Collect() const;

 private:
  prometheus::Registry registry_;
  prometheus::Family<prometheus::Counter>& errors_;
  prometheus::Family<prometheus::Counter>& dropped_;
};

}  // namespace pgtally
