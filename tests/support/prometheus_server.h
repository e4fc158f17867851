#pragma once

#include <sys/types.h>
#include <yaml-cpp/yaml.h>

#include <string>

namespace pgtally::testing {

// A throwaway Prometheus server for tests: its own directory under /tmp (config, TSDB, log), a
// free loopback port. The binary is PGTALLY_PROMETHEUS, else `prometheus` in PATH (Debian
// package prometheus). Not thread-safe; nothing leaks when the constructor throws.
class PrometheusServer {
 public:
  // Writes `config` (prometheus.yml text) and starts Prometheus on it; waits until /-/ready
  // answers (30 s at most). Throws std::runtime_error with the log's tail on failure.
  explicit PrometheusServer(const std::string& config);
  // Stops Prometheus (SIGTERM, then SIGKILL) and removes its directory. Never throws.
  ~PrometheusServer();
  PrometheusServer(const PrometheusServer&) = delete;
  PrometheusServer& operator=(const PrometheusServer&) = delete;

  struct Result {
    std::string error;  // empty when Prometheus accepted the query
    std::size_t series = 0;
  };
  // An instant query at the current time through the HTTP API.
  Result Query(const std::string& expr) const;
  // GET of an API path such as "/api/v1/rules", parsed (JSON is YAML).
  YAML::Node Api(const std::string& path_and_query) const;

  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::string LogTail() const;

 private:
  void Shutdown() noexcept;

  pid_t owner_;
  std::string dir_;
  int port_ = 0;
  pid_t pid_ = 0;
};

}  // namespace pgtally::testing
