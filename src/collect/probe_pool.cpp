#include "pgtally/collect/probe_pool.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <charconv>

#include "pgtally/log/logging.h"

namespace pgtally {
namespace {

using Clock = std::chrono::steady_clock;

// A value for a key=value connection string, quoted as libpq wants.
std::string QuotedValue(std::string_view value) {
  std::string out = "'";
  for (const char c : value) {
    if (c == '\'' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  out.push_back('\'');
  return out;
}

bool ValidHost(std::string_view host) {
  return !host.empty() && host.size() <= 253 && std::all_of(host.begin(), host.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '_' ||
           c == ':';
  });
}

prometheus::MetricFamily Gauge(std::string name, std::string help, double value) {
  prometheus::ClientMetric metric;
  metric.gauge.value = value;
  return {std::move(name), std::move(help), prometheus::MetricType::Gauge, {std::move(metric)}};
}

// /probe's share of the connection budget: probe.max_connections, but one connection of the
// budget stays free for /metrics (the DSN's own database), which a crowd of probes must not
// starve.
std::shared_ptr<ConnectionLimit> ProbeLimit(const ProbeOptions& options) {
  int max = options.max_connections;
  if (options.budget) max = std::clamp(options.budget->max() - 1, 1, max);
  return std::make_shared<ConnectionLimit>(max, "probe.max_connections", options.budget);
}

}  // namespace

std::string ProbeAddress::HostPort() const {
  return host.find(':') == std::string::npos ? fmt::format("{}:{}", host, port)
                                             : fmt::format("[{}]:{}", host, port);
}

std::optional<ProbeAddress> ParseProbeAddress(std::string_view text, std::string& error) {
  for (const std::string_view scheme : {"postgresql://", "postgres://"}) {
    if (text.starts_with(scheme)) text.remove_prefix(scheme.size());
  }
  if (text.find('@') != std::string_view::npos) {
    error = "the target may not carry a user or password; name an auth_module instead";
    return std::nullopt;
  }
  if (text.find('?') != std::string_view::npos) {
    error = "the target may not carry connection parameters; set them in the auth module";
    return std::nullopt;
  }
  ProbeAddress address;
  if (const auto slash = text.find('/'); slash != std::string_view::npos) {
    address.dbname = text.substr(slash + 1);
    text = text.substr(0, slash);
    if (address.dbname.find('/') != std::string::npos) {
      error = "expected host[:port][/dbname]";
      return std::nullopt;
    }
  }
  std::string_view port;
  if (text.starts_with('[')) {  // [IPv6]:port
    const auto close = text.find(']');
    if (close == std::string_view::npos) {
      error = "unterminated [ in the target's host";
      return std::nullopt;
    }
    address.host = text.substr(1, close - 1);
    const std::string_view rest = text.substr(close + 1);
    if (!rest.empty()) {
      if (!rest.starts_with(':')) {
        error = "expected :port after ]";
        return std::nullopt;
      }
      port = rest.substr(1);
    }
  } else if (const auto colon = text.find(':'); colon != std::string_view::npos) {
    address.host = text.substr(0, colon);
    port = text.substr(colon + 1);
  } else {
    address.host = text;
  }
  if (!ValidHost(address.host) ||
      (address.host.find(':') != std::string::npos && !text.starts_with('['))) {
    error = fmt::format("\"{}\" is not a host name or IP address", address.host);
    return std::nullopt;
  }
  if (!port.empty()) {
    const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), address.port);
    if (ec != std::errc() || end != port.data() + port.size() || address.port < 1 ||
        address.port > 65535) {
      error = fmt::format("\"{}\" is not a port number", port);
      return std::nullopt;
    }
  }
  return address;
}

std::string ProbeDatabase(const ProbeAddress& address, const AuthModule& module) {
  if (!address.dbname.empty()) return address.dbname;
  const auto it = module.options.find("dbname");
  return it != module.options.end() ? it->second : "postgres";
}

std::string ProbeTargetName(const ProbeAddress& address, const AuthModule& module) {
  return address.HostPort() + "/" + ProbeDatabase(address, module);
}

std::string ProbeDsn(const ProbeAddress& address, const AuthModule& module) {
  const std::string dbname = ProbeDatabase(address, module);
  std::string dsn = fmt::format("host={} port={} dbname={} user={}", QuotedValue(address.host),
                                address.port, QuotedValue(dbname), QuotedValue(module.username));
  if (!module.password.empty()) dsn += " password=" + QuotedValue(module.password);
  for (const auto& [key, value] : module.options) {
    if (key != "dbname") dsn += fmt::format(" {}={}", key, QuotedValue(value));
  }
  return dsn;
}

ProbePool::ProbePool(ProbeOptions options, std::vector<CollectorSpec> collectors)
    : options_(std::move(options)),
      collectors_(std::move(collectors)),
      limit_(ProbeLimit(options_)) {
  closer_ = std::jthread([this](std::stop_token stop) {
    std::unique_lock lock(mutex_);
    while (!stop.stop_requested()) {
      // Often enough that a target is closed at most a tenth of idle_timeout late.
      const auto period = std::clamp(options_.idle_timeout / 10, Millis(100), Millis(10000));
      wake_.wait_for(lock, period);
      if (stop.stop_requested()) break;
      lock.unlock();
      CloseIdle();
      lock.lock();
    }
  });
}

ProbePool::~ProbePool() {
  {
    std::lock_guard lock(mutex_);
    closer_.request_stop();
  }
  wake_.notify_all();
  closer_.join();
}

ProbePool::Outcome ProbePool::Probe(std::string_view target, std::string_view auth_module,
                                    Millis budget) {
  Outcome outcome;
  const auto fail = [&outcome](int status, std::string error) {
    outcome.status = status;
    outcome.error = std::move(error);
    return outcome;
  };
  if (target.empty()) return fail(400, "the target parameter is required");
  if (auth_module.empty()) return fail(400, "the auth_module parameter is required");
  std::string error;
  const auto address = ParseProbeAddress(target, error);
  if (!address) return fail(400, fmt::format("invalid target \"{}\": {}", target, error));

  std::string key;
  std::shared_ptr<Exporter> exporter;
  bool kept = false;
  std::shared_ptr<ConnectionLimit> limit;  // tells, afterwards, whether the pool was reloaded
  {
    std::lock_guard lock(mutex_);
    if (stopping_) return fail(503, "shutting down");
    const auto module = options_.auth_modules.find(std::string(auth_module));
    if (module == options_.auth_modules.end()) {
      return fail(400, fmt::format("unknown auth_module \"{}\"", auth_module));
    }
    const std::string name = ProbeTargetName(*address, module->second);
    if (options_.allowed_targets && !std::regex_match(name, *options_.allowed_targets)) {
      return fail(403, fmt::format("target {} is not in probe.allowed_targets (which must match "
                                   "host:port/dbname whole)",
                                   name));
    }
    key = fmt::format("{}|{}", name, auth_module);
    limit = limit_;
    if (const auto it = targets_.find(key); it != targets_.end()) {
      it->second.last_used = Clock::now();
      exporter = it->second.exporter;
      kept = true;
    } else {
      TargetOptions options = options_.defaults;
      options.dsn = ProbeDsn(*address, module->second);
      options.password_file = module->second.password_file;
      options.connection_limit = limit_;
      exporter = std::make_shared<Exporter>(std::move(options), collectors_, false);
      std::erase_if(candidates_, [](const auto& candidate) { return candidate.expired(); });
      candidates_.push_back(exporter);
    }
  }
  outcome.output = exporter->Scrape(budget);
  std::lock_guard lock(mutex_);
  const auto it = targets_.find(key);
  if (kept) {
    // Idle time counts from the end of the last probe.
    if (it != targets_.end() && it->second.exporter == exporter) {
      it->second.last_used = Clock::now();
      it->second.up = outcome.output->up;
    }
  } else if (outcome.output->up && it == targets_.end() && !stopping_ && limit == limit_) {
    Admit(key, Entry{exporter, address->HostPort(), Clock::now(), true});
  }
  return outcome;
}

void ProbePool::CloseIdle() {
  std::vector<std::shared_ptr<Exporter>> closing;  // closed outside the lock
  {
    std::lock_guard lock(mutex_);
    const auto now = Clock::now();
    std::erase_if(targets_, [&](auto& entry) {
      auto& [key, target] = entry;
      // use_count() > 1: a probe is using it right now.
      if (now - target.last_used < options_.idle_timeout || target.exporter.use_count() > 1) {
        return false;
      }
      closing.push_back(std::move(target.exporter));
      return true;
    });
  }
  for (const auto& exporter : closing) {
    spdlog::debug("probe target idle, its connections closed: target={}",
                  Quoted(exporter->target_name()));
  }
}

std::optional<std::string> ProbePool::LeastValuable(const std::string& host_port) const {
  const std::pair<const std::string, Entry>* least = nullptr;
  for (const auto& entry : targets_) {
    const auto& target = entry.second;
    if (target.exporter.use_count() > 1) continue;  // a probe is using it
    if (!host_port.empty() && target.host_port != host_port) continue;
    // Failing before working, then the least recently probed.
    if (!least || std::pair(target.up, target.last_used) <
                      std::pair(least->second.up, least->second.last_used)) {
      least = &entry;
    }
  }
  if (!least) return std::nullopt;
  return least->first;
}

void ProbePool::Admit(const std::string& key, Entry entry) {
  const auto on_host =
      static_cast<int>(std::count_if(targets_.begin(), targets_.end(), [&](const auto& target) {
        return target.second.host_port == entry.host_port;
      }));
  std::optional<std::string> victim;
  std::string_view bound;
  if (on_host >= options_.max_targets_per_host) {
    victim = LeastValuable(entry.host_port);
    bound = "probe.max_targets_per_host";
  } else if (targets_.size() >= static_cast<std::size_t>(options_.max_connections)) {
    victim = LeastValuable("");
    bound = "probe.max_connections";
  }
  if (!bound.empty()) {
    if (!victim) {
      spdlog::info(
          "probe targets at their limit, all in use; not keeping the new one: limit={} "
          "target={}",
          bound, Quoted(entry.exporter->target_name()));
      return;
    }
    spdlog::info("probe targets at their limit; closing the least valuable: limit={} target={}",
                 bound, Quoted(targets_.at(*victim).exporter->target_name()));
    targets_.erase(*victim);
  }
  spdlog::debug("probe target kept: target={}", Quoted(entry.exporter->target_name()));
  targets_.emplace(key, std::move(entry));
}

void ProbePool::Reload(ProbeOptions options, std::vector<CollectorSpec> collectors) {
  std::map<std::string, Entry> closing;
  {
    std::lock_guard lock(mutex_);
    options_ = std::move(options);
    collectors_ = std::move(collectors);
    limit_ = ProbeLimit(options_);
    closing.swap(targets_);
  }
  wake_.notify_all();  // the idle timeout may have changed
}

void ProbePool::Stop(Millis grace) {
  std::lock_guard lock(mutex_);
  stopping_ = true;
  for (const auto& [key, target] : targets_) target.exporter->Stop(grace);
  for (const auto& candidate : candidates_) {
    if (const auto exporter = candidate.lock()) exporter->Stop(grace);
  }
}

std::vector<prometheus::MetricFamily> ProbePool::Metrics() const {
  std::lock_guard lock(mutex_);
  std::vector<prometheus::MetricFamily> families;
  families.push_back(Gauge("pgtally_probe_targets",
                           "Targets of /probe kept open (probed within probe.idle_timeout).",
                           static_cast<double>(targets_.size())));
  families.push_back(Gauge("pgtally_probe_connections",
                           "Database connections open for /probe targets.",
                           static_cast<double>(limit_->in_use())));
  families.push_back(Gauge("pgtally_probe_connections_max",
                           "The bound on database connections for /probe targets "
                           "(probe.max_connections).",
                           static_cast<double>(limit_->max())));
  return families;
}

}  // namespace pgtally
