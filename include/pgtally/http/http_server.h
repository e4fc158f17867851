#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "pgtally/collect/exporter.h"
#include "pgtally/collect/probe_pool.h"
#include "pgtally/config/duration.h"
#include "pgtally/config/web_config.h"

namespace pgtally {

struct HttpOptions {
  std::string listen_address = ":9187";  // [host]:port; port 0 picks a free one
  std::string telemetry_path = "/metrics";
  Millis default_scrape_timeout{
      10000};        // when the request has no X-Prometheus-Scrape-Timeout-Seconds
  int threads = 32;  // connections served at once; ~40 KiB each when busy
  // From the web config file: HTTPS instead of HTTP, and basic authentication when there are
  // users. With `unauthenticated_probes`, /healthz and /readyz answer without credentials.
  WebConfig web = {};
  bool unauthenticated_probes = false;
};

// The HTTP endpoints, served by CivetWeb: the telemetry path, /probe (other targets, when there
// is a probe pool), / (a landing page), /collectors (the collectors and their last scrape, HTML
// or ?format=json), /healthz (the process is alive) and /readyz (ready to serve; reports database
// reachability in its body but never fails because of it). Handlers see the whole request, so
// headers such as the scrape timeout are honoured. Serving starts in the constructor and stops in
// the destructor.
class HttpServer {
 public:
  // Throws std::runtime_error when it cannot listen (address in use, bad address) or the TLS
  // settings are unusable.
  // With a `probes` pool, /probe?target=...&auth_module=... scrapes other servers too.
  HttpServer(const HttpOptions& options, Exporter& exporter, ProbePool* probes = nullptr);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // The ports actually bound, in listening order (useful with port 0).
  std::vector<int> ports() const;

  // Replaces the basic authentication users (none: no authentication), from the next request
  // on, as a reloaded web config file asks. Thread-safe.
  void SetBasicAuthUsers(const std::map<std::string, std::string>& users);

  // For shutdown: answers new requests with 503 and waits until the requests being served have
  // been answered, or `deadline` passes (then returns false). CivetWeb stops writing responses
  // the moment it is told to stop, so this comes first.
  bool Drain(std::chrono::steady_clock::time_point deadline);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The CivetWeb form of a Prometheus-style listen address: ":9187" -> "9187".
std::string CivetListeningPorts(const std::string& listen_address);

// The bounds of a request's scrape budget, whatever its timeout header says (a longer default
// timeout raises the upper one).
inline constexpr Millis kMinScrapeBudget{1000};
inline constexpr Millis kMaxScrapeBudget{120000};

// The scrape budget for a request: the scraper's timeout less a margin, else the default;
// within the bounds above.
Millis ScrapeBudget(const char* timeout_header, Millis default_timeout);

}  // namespace pgtally
