#pragma once

#include <chrono>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "pgtally/collect/self_metrics.h"
#include "pgtally/collect/target.h"
#include "pgtally/config/collector_spec.h"

namespace pgtally {

// One finished scrape, serialized once and shared by every request that asked for it.
struct ScrapeOutput {
  // The exposition (text format 0.0.4) in parts, sent one after the other: the collectors'
  // sample lines stay in the strings they were written to, never copied into one body.
  std::vector<std::string> parts;
  std::size_t size = 0;  // the bytes of all parts
  bool up = false;
  std::chrono::system_clock::time_point finished;

  // The gzip form, made once by whichever request asks first (see HttpServer); nullopt after
  // that only if compressing failed.
  mutable std::once_flag gzip_once;
  mutable std::optional<std::string> gzip;

  void Append(std::string part) {
    size += part.size();
    parts.push_back(std::move(part));
  }
  std::string Text() const;  // the parts joined
};

// How each collector did in one scrape, kept by the Exporter for the /collectors page: one small
// struct per collector, never the metrics.
struct CollectorsReport {
  std::shared_ptr<const std::vector<CollectorSpec>> collectors;  // those the scrape ran
  std::chrono::system_clock::time_point finished;
  bool up = false;
  std::optional<int> server_version;  // unset when the server was not reached
  bool in_recovery = false;
  std::vector<CollectorReport> reports;  // in the order of `collectors`; empty when not up
};

// The scrape engine behind /metrics: owns the target, the collectors and the self-metrics.
// Thread-safe. Concurrent requests coalesce: a request that arrives while a scrape is running
// waits for that scrape and gets its result, so the database sees each query once.
class Exporter {
 public:
  // `reloads`: whether its output reports config reloads (not for the targets of /probe).
  Exporter(TargetOptions target, std::vector<CollectorSpec> collectors, bool reloads = true);
  ~Exporter();
  Exporter(const Exporter&) = delete;
  Exporter& operator=(const Exporter&) = delete;

  // More of pgtally's own metrics for every scrape's output, e.g. the /probe pool's. Set before
  // the first scrape; called during scrapes, so it must be thread-safe.
  void SetExtraMetrics(std::function<std::vector<prometheus::MetricFamily>()> source) {
    extra_metrics_ = std::move(source);
  }

  // Scrapes within `budget` (or joins the scrape in progress, which then runs until the later of
  // its deadline and this one's). Returns null when the scrape has not finished by the end of
  // `budget`: a request never waits longer than it said, and what it said neither shortens the
  // scrape for the others nor closes anything. Never throws.
  std::shared_ptr<const ScrapeOutput> Scrape(Millis budget);

  // Replaces the target and the collectors from the next scrape on; a scrape in progress ends
  // with the ones it started with. Reported as a successful reload.
  void Reload(TargetOptions target, std::vector<CollectorSpec> collectors);
  // Reports a rejected reload; the running configuration stays.
  void NoteReloadFailure();
  // For shutdown: the scrape in progress, and any later one, ends within `grace` from now,
  // cutting short the queries still running then.
  void Stop(Millis grace);

  // How the most recent scrape went, or nullopt before the first. Its body is not kept: that
  // would hold a second exposition in memory while the next scrape builds its own.
  struct Status {
    bool up = false;
    std::chrono::system_clock::time_point finished;
    // When the database is not up because pgtally waits before connecting again: until when.
    std::optional<std::chrono::system_clock::time_point> backing_off_until;
    std::string privilege_warning;  // see TargetScrape::privilege_warning
  };
  std::optional<Status> last() const;
  std::string target_name() const;
  std::size_t collector_count() const;

  // The collectors loaded now (those of the last reload) and, when the most recent scrape ran
  // these same collectors, its report; else `last` is null: not run yet. Copies two pointers
  // under the lock; never scrapes.
  struct CollectorsView {
    std::shared_ptr<const std::vector<CollectorSpec>> collectors;
    std::shared_ptr<const CollectorsReport> last;
    bool reloaded = false;  // there was a scrape, but of the collectors before a reload
  };
  CollectorsView collectors() const;

 private:
  // Starts a scrape on a thread of its own, with mutex_ held by `lock`.
  void StartScrape(pg::Clock::time_point deadline, std::unique_lock<std::mutex>& lock);
  std::shared_ptr<const ScrapeOutput> RunScrape(const ScrapeDeadline& deadline);
  // Served when a scrape fails in a way it should not: "up" is 0, and the exporter keeps running.
  std::string FallbackBody() const;

  SelfMetrics self_metrics_;
  std::function<std::vector<prometheus::MetricFamily>()> extra_metrics_;
  std::shared_ptr<pg::Interrupt> interrupt_;
  std::unique_ptr<Target> target_;  // used by the one running scrape only

  mutable std::mutex mutex_;
  std::unique_ptr<Target> next_target_;  // from Reload, taken by the next scrape
  std::string target_name_;
  std::size_t collector_count_ = 0;
  std::shared_ptr<const std::vector<CollectorSpec>> collectors_;  // the last reload's
  std::shared_ptr<const CollectorsReport> last_report_;
  std::shared_future<std::shared_ptr<const ScrapeOutput>> in_flight_;  // valid while one runs
  std::shared_ptr<ScrapeDeadline> in_flight_deadline_;                 // the running one's
  std::thread scrape_thread_;  // the last scrape's, joined before the next starts
  std::optional<Status> last_;
};

// pgtally_build_info's labels.
std::string_view BuildVersion();
std::string_view BuildRevision();

}  // namespace pgtally
