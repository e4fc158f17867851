#include "pgtally/http/http_server.h"

#include <CivetServer.h>
#include <fmt/chrono.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <cmath>
#include <cstring>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <thread>

#include "http/tls.h"
#include "pgtally/config/duration.h"
#include "pgtally/http/basic_auth.h"
#include "pgtally/http/collectors_page.h"
#include "pgtally/http/gzip.h"
#include "pgtally/log/logging.h"

namespace pgtally {
namespace {

constexpr std::string_view kExpositionType = "text/plain; version=0.0.4; charset=utf-8";
constexpr std::string_view kTextType = "text/plain; charset=utf-8";
constexpr std::string_view kHtmlType = "text/html; charset=utf-8";

const char* StatusText(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 503:
      return "Service Unavailable";
    default:
      return "Internal Server Error";
  }
}

// The status line and headers of a response with a `length`-byte body. `extra_headers` are
// whole lines, each ending in CRLF.
void RespondHeaders(mg_connection* conn, int status, std::string_view content_type,
                    std::size_t length, std::string_view extra_headers) {
  mg_printf(conn,
            "HTTP/1.1 %d %s\r\nContent-Type: %.*s\r\nContent-Length: %zu\r\nCache-Control: "
            "no-store\r\n%.*s\r\n",
            status, StatusText(status), static_cast<int>(content_type.size()), content_type.data(),
            length, static_cast<int>(extra_headers.size()), extra_headers.data());
}

void Respond(mg_connection* conn, int status, std::string_view content_type, std::string_view body,
             bool head = false, std::string_view extra_headers = "") {
  RespondHeaders(conn, status, content_type, body.size(), extra_headers);
  if (!head) mg_write(conn, body.data(), body.size());
}

// Counts the requests being served, and turns new ones away once the server is draining.
struct RequestGate {
  std::atomic<int> active{0};
  std::atomic<bool> draining{false};
};

// What every handler shares: the gate, and the authentication it asks for.
struct HandlerContext {
  RequestGate gate;
  // Null: no authentication. Replaced whole when the users change, which also forgets the
  // verifications cached for the old ones. (A mutex, not std::atomic<std::shared_ptr>, whose
  // libstdc++ 12 implementation ThreadSanitizer cannot see through.)
  std::shared_ptr<BasicAuth> Auth() const {
    std::lock_guard lock(auth_mutex);
    return auth;
  }
  void SetAuth(std::shared_ptr<BasicAuth> to) {
    std::lock_guard lock(auth_mutex);
    auth = std::move(to);
  }

  mutable std::mutex auth_mutex;
  std::shared_ptr<BasicAuth> auth;
};

// A handler that turns every exception into a 500, because one escaping into CivetWeb's C code
// would end the process, asks for credentials when users are configured, and answers 503 while
// the server drains before it stops.
class Handler : public CivetHandler {
 public:
  bool handleGet(CivetServer*, mg_connection* conn) override { return Guarded(conn, false); }
  bool handleHead(CivetServer*, mg_connection* conn) override { return Guarded(conn, true); }
  void set_context(HandlerContext* context, bool authenticate) {
    context_ = context;
    authenticate_ = authenticate;
  }

 protected:
  virtual void Serve(mg_connection* conn, bool head) = 0;

 private:
  bool Guarded(mg_connection* conn, bool head) {
    ++context_->gate.active;
    try {
      if (context_->gate.draining) {
        Respond(conn, 503, kTextType, "shutting down\n", head);
      } else if (const auto auth = authenticate_ ? context_->Auth() : nullptr;
                 auth && !auth->Check(mg_get_header(conn, "Authorization"))) {
        Respond(conn, 401, kTextType, "unauthorized\n", head,
                "WWW-Authenticate: Basic realm=\"pgtally\", charset=\"UTF-8\"\r\n");
      } else {
        Serve(conn, head);
      }
    } catch (const std::exception& e) {
      spdlog::error("http handler failed: error={}", Quoted(e.what()));
      Respond(conn, 500, kTextType, "internal error\n", head);
    } catch (...) {
      Respond(conn, 500, kTextType, "internal error\n", head);
    }
    --context_->gate.active;
    return true;
  }

  HandlerContext* context_ = nullptr;
  bool authenticate_ = true;
};

// Sends a scrape's output, gzipped when the client accepts it. The gzip form is made once per
// output, however many coalesced requests share it, and lives as long as the output.
void SendExposition(mg_connection* conn, const ScrapeOutput& output, bool head) {
  if (AcceptsGzip(mg_get_header(conn, "Accept-Encoding"))) {
    std::call_once(output.gzip_once, [&output] { output.gzip = Gzip(output.parts); });
    if (output.gzip) {
      Respond(conn, 200, kExpositionType, *output.gzip, head,
              "Content-Encoding: gzip\r\nVary: Accept-Encoding\r\n");
      return;
    }
  }
  RespondHeaders(conn, 200, kExpositionType, output.size, "Vary: Accept-Encoding\r\n");
  if (head) return;
  // Gathered into writes of about 64 KiB: one send per part would be hundreds of small ones.
  constexpr std::size_t kWrite = 64 * 1024;
  std::string buffer;
  buffer.reserve(kWrite);
  const auto flush = [&] {
    const bool sent = mg_write(conn, buffer.data(), buffer.size()) > 0;
    buffer.clear();
    return sent;
  };
  for (const auto& part : output.parts) {
    if (buffer.size() + part.size() > kWrite && !buffer.empty() && !flush()) return;
    if (part.size() >= kWrite) {
      if (mg_write(conn, part.data(), part.size()) <= 0) return;  // the client went away
    } else {
      buffer += part;
    }
  }
  if (!buffer.empty()) flush();
}

// The URL-decoded value of a query parameter: empty when absent, nullopt when too long.
std::optional<std::string> Parameter(const char* query, const char* name) {
  if (!query) return std::string();
  char value[1024];
  const int length = mg_get_var(query, std::strlen(query), name, value, sizeof value);
  if (length == -2) return std::nullopt;  // CivetWeb: the buffer is too small
  return length > 0 ? std::string(value, static_cast<std::size_t>(length)) : std::string();
}

Millis RequestBudget(mg_connection* conn, Millis default_timeout) {
  return ScrapeBudget(mg_get_header(conn, "X-Prometheus-Scrape-Timeout-Seconds"), default_timeout);
}

// The scrape's exposition, or 503 when it did not finish within the request's budget.
void SendScrape(mg_connection* conn, const ScrapeOutput* output, Millis budget, bool head) {
  if (!output) {
    Respond(conn, 503, kTextType,
            fmt::format("the scrape did not finish within this request's budget of {}; it goes "
                        "on for requests with a longer timeout\n",
                        FormatDuration(budget)),
            head);
    return;
  }
  SendExposition(conn, *output, head);
}

class MetricsHandler final : public Handler {
 public:
  MetricsHandler(Exporter& exporter, Millis default_timeout)
      : exporter_(exporter), default_timeout_(default_timeout) {}

 private:
  void Serve(mg_connection* conn, bool head) override {
    const Millis budget = RequestBudget(conn, default_timeout_);
    SendScrape(conn, exporter_.Scrape(budget).get(), budget, head);
  }

  Exporter& exporter_;
  Millis default_timeout_;
};

// /probe?target=host:port/dbname&auth_module=name, as blackbox_exporter and postgres_exporter.
class ProbeHandler final : public Handler {
 public:
  ProbeHandler(ProbePool* probes, Millis default_timeout)
      : probes_(probes), default_timeout_(default_timeout) {}

 private:
  void Serve(mg_connection* conn, bool head) override {
    if (!probes_) {
      Respond(conn, 404, kTextType, "not found; see /\n", head);
      return;
    }
    const char* query = mg_get_request_info(conn)->query_string;
    const auto target = Parameter(query, "target");
    const auto auth_module = Parameter(query, "auth_module");
    if (!target || !auth_module) {
      Respond(conn, 400, kTextType, "a parameter is longer than 1023 bytes\n", head);
      return;
    }
    const Millis budget = RequestBudget(conn, default_timeout_);
    const auto outcome = probes_->Probe(*target, *auth_module, budget);
    if (outcome.status != 200) {
      Respond(conn, outcome.status, kTextType, outcome.error + "\n", head);
      return;
    }
    SendScrape(conn, outcome.output.get(), budget, head);
  }

  ProbePool* probes_;
  Millis default_timeout_;
};

class HealthHandler final : public Handler {
  void Serve(mg_connection* conn, bool head) override {
    Respond(conn, 200, kTextType, "ok\n", head);
  }
};

class ReadyHandler final : public Handler {
 public:
  explicit ReadyHandler(Exporter& exporter) : exporter_(exporter) {}

 private:
  // Ready means able to serve scrapes. A database that is down is reported, not failed on: in a
  // Kubernetes pod an unready sidecar would take the whole pod, database included, out of its
  // Service.
  void Serve(mg_connection* conn, bool head) override {
    std::string body = "ready\n";
    if (const auto last = exporter_.last()) {
      body += fmt::format("database: {} (last scrape {:%Y-%m-%dT%H:%M:%S}Z)\n",
                          last->up ? "reachable" : "unreachable",
                          fmt::gmtime(std::chrono::system_clock::to_time_t(last->finished)));
      if (last->backing_off_until) {
        body += fmt::format(
            "connecting: backing off after a connection attempt timed out; next attempt after "
            "{:%Y-%m-%dT%H:%M:%S}Z\n",
            fmt::gmtime(std::chrono::system_clock::to_time_t(*last->backing_off_until)));
      }
      if (!last->privilege_warning.empty()) {
        body += fmt::format("warning: {}\n", last->privilege_warning);
      }
    } else {
      body += "database: unknown (no scrape yet)\n";
    }
    Respond(conn, 200, kTextType, body, head);
  }

  Exporter& exporter_;
};

// /collectors, and /collectors?format=json: the collectors and how each did in the last scrape.
// Shows what the exporter kept; never scrapes, so it answers at once even while one runs.
class CollectorsHandler final : public Handler {
 public:
  explicit CollectorsHandler(Exporter& exporter) : exporter_(exporter) {}

 private:
  void Serve(mg_connection* conn, bool head) override {
    const auto format = Parameter(mg_get_request_info(conn)->query_string, "format");
    if (format && *format == "json") {
      Respond(conn, 200, "application/json; charset=utf-8",
              CollectorsJson(exporter_.collectors(), exporter_.target_name()), head);
    } else if (format && (format->empty() || *format == "html")) {
      Respond(conn, 200, kHtmlType, CollectorsHtml(exporter_.collectors(), exporter_.target_name()),
              head);
    } else {
      Respond(conn, 400, kTextType, "format must be html or json\n", head);
    }
  }

  Exporter& exporter_;
};

class LandingHandler final : public Handler {
 public:
  LandingHandler(Exporter& exporter, std::string telemetry_path)
      : exporter_(exporter), telemetry_path_(std::move(telemetry_path)) {}

 private:
  void Serve(mg_connection* conn, bool head) override {
    const std::string uri =
        mg_get_request_info(conn)->local_uri ? mg_get_request_info(conn)->local_uri : "/";
    if (uri != "/") {
      Respond(conn, 404, kTextType, "not found; see /\n", head);
      return;
    }
    const auto path = HtmlEscape(telemetry_path_);
    const auto body = fmt::format(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>pgtally</title></head><body>\n"
        "<h1>pgtally</h1>\n<p>PostgreSQL exporter for Prometheus, version {} ({}).</p>\n"
        "<p>Target: <code>{}</code>, {} collectors.</p>\n<ul>\n"
        "<li><a href=\"{}\">{}</a>: metrics</li>\n"
        "<li>/probe?target=host:port[/dbname]&amp;auth_module=NAME: another server's "
        "metrics</li>\n"
        "<li><a href=\"/collectors\">/collectors</a>: the collectors, the query each runs on "
        "this server and how each did in the last scrape</li>\n"
        "<li><a href=\"/healthz\">/healthz</a>: "
        "liveness</li>\n"
        "<li><a href=\"/readyz\">/readyz</a>: readiness and database "
        "reachability</li>\n</ul>\n</body></html>\n",
        BuildVersion(), BuildRevision(), HtmlEscape(exporter_.target_name()),
        exporter_.collector_count(), path, path);
    Respond(conn, 200, kHtmlType, body, head);
  }

  Exporter& exporter_;
  std::string telemetry_path_;
};

// While the server starts, CivetWeb's first complaint is kept here to explain a failure, instead
// of its generic "null context" exception text.
thread_local std::string* startup_error = nullptr;

int LogCivetMessage(const mg_connection*, const char* message) {
  if (startup_error) {
    if (startup_error->empty()) *startup_error = message;
  } else {
    spdlog::warn("http server: message={}", Quoted(message));
  }
  return 1;
}

}  // namespace

std::string CivetListeningPorts(const std::string& listen_address) {
  if (listen_address.starts_with(':')) return listen_address.substr(1);
  return listen_address;
}

Millis ScrapeBudget(const char* timeout_header, Millis default_timeout) {
  double seconds = 0;
  if (timeout_header) {
    const std::string_view text(timeout_header);
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), seconds);
    if (ec != std::errc() || end != text.data() + text.size() || !std::isfinite(seconds) ||
        seconds <= 0) {
      seconds = 0;
    }
  }
  if (seconds == 0) return default_timeout;
  // Answer a little before the scraper gives up, so it gets pg_up and the self-metrics at least.
  const auto timeout = Millis(static_cast<Millis::rep>(std::min(seconds, 86400.0) * 1000));
  // Any client may say anything here, and a scrape is shared: a tiny budget would time out the
  // connections others use, a huge one would hold queries open for hours.
  return std::clamp(timeout - std::min(Millis(500), timeout / 10), kMinScrapeBudget,
                    std::max(kMaxScrapeBudget, default_timeout));
}

// During the server's start, the TLS settings its external_ssl_ctx callback reads.
thread_local const TlsConfig* starting_tls = nullptr;

int ExternalSslContext(void** ssl_ctx, void*) {
  if (*ssl_ctx != nullptr) {  // the server is stopping
    SSL_CTX_free(static_cast<SSL_CTX*>(*ssl_ctx));
    *ssl_ctx = nullptr;
    return 1;
  }
  if (!starting_tls) return 0;
  std::string error;
  SSL_CTX* ctx = NewServerContext(*starting_tls, error);
  if (!ctx) {
    LogCivetMessage(nullptr, ("TLS: " + error).c_str());
    return -1;
  }
  *ssl_ctx = ctx;
  return 1;
}

struct HttpServer::Impl {
  Impl(const HttpOptions& options, Exporter& exporter, ProbePool* probes)
      : tls(options.web.tls),
        metrics(exporter, options.default_scrape_timeout),
        probe(probes, options.default_scrape_timeout),
        ready(exporter),
        collectors(exporter),
        landing(exporter, options.telemetry_path) {
    SetBasicAuthUsers(options.web.basic_auth_users);
    for (Handler* handler :
         std::initializer_list<Handler*>{&metrics, &probe, &collectors, &landing}) {
      handler->set_context(&context, true);
    }
    for (Handler* handler : std::initializer_list<Handler*>{&health, &ready}) {
      handler->set_context(&context, !options.unauthenticated_probes);
    }
    callbacks.log_message = LogCivetMessage;
    std::string ports = CivetListeningPorts(options.listen_address);
    if (tls) {
      if (auto error = LoadOpenSslCompat()) throw std::runtime_error(*error);
      callbacks.external_ssl_ctx = ExternalSslContext;
      ports += "s";
    }
    // CivetWeb gives each connection a worker thread until its request is answered, so slow
    // clients (slowloris) can take every worker. Two limits bound the harm: more workers than a
    // handful of slow clients can fill, and a request timeout that caps the time to receive the
    // request headers, to complete a TLS handshake, and any stall while writing the response.
    // Prometheus sends its request in one packet and reads promptly, so 5 s never bites it.
    const std::vector<std::string> civet_options = {
        "listening_ports",    ports,  "num_threads",       std::to_string(options.threads),
        "request_timeout_ms", "5000", "enable_keep_alive", "yes",
    };
    std::string error;
    startup_error = &error;
    starting_tls = tls ? &*tls : nullptr;
    try {
      server = std::make_unique<CivetServer>(civet_options, &callbacks);
    } catch (const CivetException& e) {
      startup_error = nullptr;
      starting_tls = nullptr;
      throw std::runtime_error(fmt::format("cannot listen on {}: {}", options.listen_address,
                                           error.empty() ? e.what() : error));
    }
    startup_error = nullptr;
    starting_tls = nullptr;
    server->addHandler(options.telemetry_path + "$", metrics);
    server->addHandler("/probe$", probe);
    server->addHandler("/healthz$", health);
    server->addHandler("/readyz$", ready);
    server->addHandler("/collectors$", collectors);
    server->addHandler("/", landing);
  }

  void SetBasicAuthUsers(const std::map<std::string, std::string>& users) {
    context.SetAuth(users.empty() ? nullptr : std::make_shared<BasicAuth>(users));
  }

  std::optional<TlsConfig> tls;  // read by every handshake
  HandlerContext context;
  CivetCallbacks callbacks;
  MetricsHandler metrics;
  ProbeHandler probe;
  HealthHandler health;
  ReadyHandler ready;
  CollectorsHandler collectors;
  LandingHandler landing;
  std::unique_ptr<CivetServer> server;  // last: stops before the handlers it calls go away
};

HttpServer::HttpServer(const HttpOptions& options, Exporter& exporter, ProbePool* probes)
    : impl_(std::make_unique<Impl>(options, exporter, probes)) {}

HttpServer::~HttpServer() = default;

std::vector<int> HttpServer::ports() const { return impl_->server->getListeningPorts(); }

void HttpServer::SetBasicAuthUsers(const std::map<std::string, std::string>& users) {
  impl_->SetBasicAuthUsers(users);
}

bool HttpServer::Drain(std::chrono::steady_clock::time_point deadline) {
  impl_->context.gate.draining = true;
  while (impl_->context.gate.active > 0) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}

}  // namespace pgtally
