#include "prometheus_server.h"

#include <curl/curl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <stdexcept>
#include <thread>

#include "http_client.h"
#include "os_util.h"

namespace pgtally::testing {
namespace {

namespace fs = std::filesystem;
using std::chrono::steady_clock;

std::string UrlEscape(const std::string& text) {
  std::unique_ptr<char, decltype(&curl_free)> escaped(
      curl_easy_escape(nullptr, text.c_str(), static_cast<int>(text.size())), &curl_free);
  if (!escaped) throw std::runtime_error("curl_easy_escape failed");
  return escaped.get();
}

}  // namespace

PrometheusServer::PrometheusServer(const std::string& config) : owner_(getpid()) {
  char pattern[] = "/tmp/pgtally-prometheus-XXXXXX";
  if (mkdtemp(pattern) == nullptr) throw SystemError("mkdtemp /tmp/pgtally-prometheus-XXXXXX");
  dir_ = pattern;
  try {
    std::ofstream(dir_ + "/prometheus.yml") << config;
    const char* binary = std::getenv("PGTALLY_PROMETHEUS");
    const std::string program = binary != nullptr && *binary != '\0' ? binary : "prometheus";
    port_ = FreeLoopbackPort();
    pid_ = Spawn({program, "--config.file=" + dir_ + "/prometheus.yml",
                  "--storage.tsdb.path=" + dir_ + "/data",
                  "--web.listen-address=127.0.0.1:" + std::to_string(port_), "--log.level=warn"},
                 dir_ + "/prometheus.log", std::nullopt);
    const auto give_up = steady_clock::now() + std::chrono::seconds(30);
    while (HttpGet(url() + "/-/ready").status != 200) {
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = 0;
        throw std::runtime_error(
            "prometheus exited; install the prometheus package "
            "(scripts/install-deps.sh) or set PGTALLY_PROMETHEUS; log:\n" +
            LogTail());
      }
      if (steady_clock::now() > give_up) {
        throw std::runtime_error("prometheus was not ready within 30 s; log:\n" + LogTail());
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  } catch (...) {
    Shutdown();
    throw;
  }
}

PrometheusServer::~PrometheusServer() { Shutdown(); }

void PrometheusServer::Shutdown() noexcept {
  if (getpid() != owner_) return;
  if (pid_ > 0) {
    kill(pid_, SIGTERM);
    const auto give_up = steady_clock::now() + std::chrono::seconds(10);
    while (waitpid(pid_, nullptr, WNOHANG) == 0) {
      if (steady_clock::now() > give_up) {
        kill(pid_, SIGKILL);
        waitpid(pid_, nullptr, 0);
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    pid_ = 0;
  }
  std::error_code ignored;
  fs::remove_all(dir_, ignored);
}

YAML::Node PrometheusServer::Api(const std::string& path_and_query) const {
  const auto response = HttpGet(url() + path_and_query);
  if (response.status == 0) throw std::runtime_error("no answer from " + url());
  return YAML::Load(response.body);
}

PrometheusServer::Result PrometheusServer::Query(const std::string& expr) const {
  const YAML::Node answer = Api("/api/v1/query?query=" + UrlEscape(expr));
  Result result;
  if (answer["status"].as<std::string>("") != "success") {
    result.error = answer["error"].as<std::string>("no error text");
    return result;
  }
  const YAML::Node data = answer["data"]["result"];
  // A scalar or string result is a [time, value] pair, not a list of series.
  result.series = answer["data"]["resultType"].as<std::string>("") == "vector" ||
                          answer["data"]["resultType"].as<std::string>("") == "matrix"
                      ? data.size()
                      : 1;
  return result;
}

std::string PrometheusServer::LogTail() const { return ReadTail(dir_ + "/prometheus.log"); }

}  // namespace pgtally::testing
