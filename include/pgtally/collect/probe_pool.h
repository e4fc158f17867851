#pragma once

#include <prometheus/metric_family.h>

#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <regex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "pgtally/collect/exporter.h"
#include "pgtally/config/exporter_config.h"

namespace pgtally {

// Where a /probe request points: a PostgreSQL server and, optionally, a database.
struct ProbeAddress {
  std::string host;  // a name or an IP address (IPv6 without its brackets)
  int port = 5432;
  std::string dbname;  // empty: the auth module's dbname option, else "postgres"

  std::string HostPort() const;  // "host:port", "[::1]:5432"
};

// Parses a /probe target: host[:port][/dbname], optionally written as a postgres:// or
// postgresql:// URI. User names, passwords and URI parameters are refused: they belong in an
// auth module. Returns nullopt with `error` set when the text is not such a target.
std::optional<ProbeAddress> ParseProbeAddress(std::string_view text, std::string& error);

// The database `address` connects to with `module`: its own, else the module's dbname option,
// else "postgres".
std::string ProbeDatabase(const ProbeAddress& address, const AuthModule& module);

// "host:port/dbname", the database being ProbeDatabase's: what allowed_targets matches, so that
// an allowed server does not mean that any database name on it is allowed too.
std::string ProbeTargetName(const ProbeAddress& address, const AuthModule& module);

// The libpq connection string for `address`, logging in as `module` says.
std::string ProbeDsn(const ProbeAddress& address, const AuthModule& module);

struct ProbeOptions {
  std::map<std::string, AuthModule> auth_modules;
  Millis idle_timeout{300000};
  int max_connections = 50;
  // The process's connection budget, which /probe's connections come out of as well. Null: none.
  std::shared_ptr<ConnectionLimit> budget;
  int max_targets_per_host = 10;              // targets kept for one host:port
  std::optional<std::regex> allowed_targets;  // matches ProbeTargetName() whole
  TargetOptions defaults;  // timeouts and database scope for every target; dsn unused
};

// The targets of the multi-target /probe endpoint. Each target (address and auth module) gets an
// Exporter of its own, kept between probes so that its connections are reused and its
// concurrent probes coalesce. A target not probed for idle_timeout is closed; all targets
// together hold at most max_connections connections.
//
// A client allowed to probe must not be able to push the legitimate targets out: a target is
// kept only once it has connected (a first probe runs on a candidate that is closed afterwards
// unless its scrape found the server up), and then at most max_targets_per_host per host:port
// and max_connections in all. To make room, the least valuable target goes: one whose last
// probe failed before one that works, then the least recently probed; never one in use.
// Thread-safe.
class ProbePool {
 public:
  ProbePool(ProbeOptions options, std::vector<CollectorSpec> collectors);
  ~ProbePool();
  ProbePool(const ProbePool&) = delete;
  ProbePool& operator=(const ProbePool&) = delete;

  struct Outcome {
    int status = 200;   // 400: bad request, 403: target not allowed, 503: stopping
    std::string error;  // why, when status is not 200
    std::shared_ptr<const ScrapeOutput> output;
  };
  // Scrapes `target` with `auth_module`'s credentials within `budget`. Never throws.
  Outcome Probe(std::string_view target, std::string_view auth_module, Millis budget);

  // New settings and collectors: every target is closed, and opened again when next probed.
  void Reload(ProbeOptions options, std::vector<CollectorSpec> collectors);
  // For shutdown: probes in progress end within `grace`; later ones are refused.
  void Stop(Millis grace);

  // pgtally_probe_* gauges for /metrics: targets kept, connections open, the bound.
  std::vector<prometheus::MetricFamily> Metrics() const;

 private:
  struct Entry {
    std::shared_ptr<Exporter> exporter;
    std::string host_port;  // for the bound per host
    std::chrono::steady_clock::time_point last_used;
    bool up = true;  // the last probe found the server up
  };
  // Closes the targets that have been idle too long (those in use are left alone).
  void CloseIdle();
  // Keeps a candidate that connected, if room can be made for it without dropping a target in
  // use; otherwise it is not kept (and closes when its probe ends).
  void Admit(const std::string& key, Entry entry);
  // The key of the least valuable target not in use, among those of `host_port` (empty: all).
  std::optional<std::string> LeastValuable(const std::string& host_port) const;

  mutable std::mutex mutex_;
  ProbeOptions options_;
  std::vector<CollectorSpec> collectors_;
  std::shared_ptr<ConnectionLimit> limit_;
  std::map<std::string, Entry> targets_;  // by address and auth module
  // First probes of targets not kept (yet), so that Stop reaches them too.
  std::vector<std::weak_ptr<Exporter>> candidates_;
  bool stopping_ = false;
  std::condition_variable wake_;
  std::jthread closer_;  // last: started once the rest exists
};

}  // namespace pgtally
