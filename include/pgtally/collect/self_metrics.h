#pragma once

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/metric_family.h>
#include <prometheus/registry.h>

#include <chrono>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace pgtally {

// The fixed set of reasons a collector fails; the details go to the log, never into labels.
enum class ErrorClass { kTimeout, kSql, kConnection, kMapping, kLimit };
std::string_view ToString(ErrorClass error_class);

// Why samples were left out of a collector's result.
enum class DropReason { kDuplicate, kInvalidValue, kLimit, kTooLarge };
std::string_view ToString(DropReason reason);

// The exporter's own metrics that must outlive a single scrape: error and drop counters, and the
// state of the last config reload. Per-scrape gauges (pg_up, durations, success) are computed
// fresh by each scrape instead. Thread-safe.
class SelfMetrics {
 public:
  // Creates every {collector, class} series at zero, so rate() sees the first error. Without
  // `reloads`, the config reload gauges are left out (a /probe target's metrics have none).
  explicit SelfMetrics(const std::vector<std::string>& collectors, bool reloads = true);

  // After a reload: starts counters of new collectors at zero and drops those of removed ones.
  void SetCollectors(const std::vector<std::string>& collectors);
  // The outcome of loading the configuration; the first load counts as one.
  void NoteReload(bool success, std::chrono::system_clock::time_point when);

  void CountError(const std::string& collector, ErrorClass error_class, double count = 1);
  void CountDropped(const std::string& collector, DropReason reason, double count);

  std::vector<prometheus::MetricFamily> Collect() const;

 private:
  // Every counter series that belongs to one collector.
  std::vector<std::pair<prometheus::Family<prometheus::Counter>*, prometheus::Labels>> SeriesOf(
      const std::string& collector);
  void AddCollector(const std::string& collector);
  void RemoveCollector(const std::string& collector);

  prometheus::Registry registry_;
  prometheus::Family<prometheus::Counter>& errors_;
  prometheus::Family<prometheus::Counter>& dropped_;
  prometheus::Gauge* reload_successful_ = nullptr;
  prometheus::Gauge* reload_success_time_ = nullptr;
  std::mutex mutex_;  // guards collectors_
  std::set<std::string> collectors_;
};

}  // namespace pgtally
