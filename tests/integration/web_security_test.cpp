// HTTPS and basic authentication on pgtally's endpoints, configured by an exporter-toolkit web
// config file, proven with real TLS handshakes: curl, openssl s_client and a real Prometheus
// scraping over HTTPS with basic auth. Certificates are made for each run by the openssl tool.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <csignal>
#include <regex>

#include "http_client.h"
#include "os_util.h"
#include "pg_server.h"
#include "process.h"
#include "prometheus_server.h"
#include "temp_dir.h"

namespace pgtally::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using namespace std::chrono_literals;

const std::string kBinary = PGTALLY_BINARY;
constexpr const char* kUser = "prometheus";
constexpr const char* kPassword = "scrape-Secret-7";
// bcrypt of kPassword, cost 10, in the $2y$ spelling htpasswd writes.
constexpr const char* kHash = "$2y$10$earowbtQjbpy8IP46MY9LOEAq9RD/uHLuQhhYByezaoDMYo0KpzH.";

void RunOpenSsl(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {"openssl"};
  argv.insert(argv.end(), args.begin(), args.end());
  Process openssl(argv);
  ASSERT_EQ(openssl.Wait(60s), 0) << openssl.Stderr();
}

// A CA, a server certificate for 127.0.0.1 and a client certificate signed by it, and a
// self-signed client certificate no one trusts.
class Certificates {
 public:
  Certificates() {
    RunOpenSsl({"req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
                "/CN=pgtally test CA", "-keyout", dir_ / "ca.key", "-out", dir_ / "ca.pem"});
    Issue("server", "/CN=pgtally-server-1", true);
    Issue("client", "/CN=prometheus", false);
    RunOpenSsl({"req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=rogue",
                "-keyout", dir_ / "rogue.key", "-out", dir_ / "rogue.pem"});
  }

  // name.key and name.pem signed by the CA.
  void Issue(const std::string& name, const std::string& subject, bool server) {
    RunOpenSsl({"req", "-newkey", "rsa:2048", "-nodes", "-subj", subject, "-keyout",
                dir_ / (name + ".key"), "-out", dir_ / (name + ".csr")});
    dir_.Write(name + ".ext",
               server ? "subjectAltName=IP:127.0.0.1\n" : "extendedKeyUsage=clientAuth\n");
    RunOpenSsl({"x509", "-req", "-in", dir_ / (name + ".csr"), "-CA", dir_ / "ca.pem", "-CAkey",
                dir_ / "ca.key", "-CAcreateserial", "-days", "2", "-extfile",
                dir_ / (name + ".ext"), "-out", dir_ / (name + ".pem")});
  }

  std::string operator/(const std::string& name) const { return dir_ / name; }

 private:
  TempDir dir_;
};

struct CurlResult {
  int exit_code = -1;
  std::string status;  // "200", or "000" without an HTTP answer
  std::string body;
  std::string headers;
};

CurlResult Curl(const std::vector<std::string>& args) {
  TempDir dir;
  std::vector<std::string> argv = {"curl",       "-sS", "--max-time",    "20", "-o",
                                   dir / "body", "-D",  dir / "headers", "-w", "%{http_code}"};
  argv.insert(argv.end(), args.begin(), args.end());
  Process curl(argv);
  CurlResult result;
  result.exit_code = curl.Wait(30s);
  result.status = curl.Stdout();
  result.body = ReadFile(dir / "body");
  result.headers = ReadFile(dir / "headers");
  return result;
}

class WebSecurity : public ::testing::Test {
 protected:
  // Starts pgtally with `web_config` (the file's text) and extra flags; returns its port.
  std::string Start(const std::string& web_config, std::vector<std::string> flags = {}) {
    const auto file = config_dir_.Write("web.yaml", web_config);
    std::vector<std::string> argv = {kBinary, "--web.listen-address=127.0.0.1:0",
                                     "--web.config.file", file};
    argv.insert(argv.end(), flags.begin(), flags.end());
    process_ = std::make_unique<Process>(
        argv, std::vector<std::string>{"DATA_SOURCE_NAME=" + SharedPgServer().Dsn()});
    const auto url = PgtallyUrl(*process_);
    EXPECT_FALSE(url.empty()) << process_->Stderr();
    return url.substr(url.rfind(':') + 1);
  }

  void TearDown() override {
    if (!process_) return;
    process_->Signal(SIGTERM);
    EXPECT_EQ(process_->Wait(10s), 0);
    // Nothing secret in any output channel.
    EXPECT_THAT(process_->Stderr() + process_->Stdout(), Not(HasSubstr(kPassword)));
  }

  std::string TlsConfig(const std::string& extra = "") const {
    return "tls_server_config:\n  cert_file: " + certs_ / "server.pem" +
           "\n  key_file: " + certs_ / "server.key" + "\n" + extra;
  }

  Certificates certs_;
  TempDir config_dir_;
  std::unique_ptr<Process> process_;
};

TEST_F(WebSecurity, HttpsWithBasicAuth) {
  const auto port = Start(TlsConfig() + "basic_auth_users:\n  " + kUser + ": " + kHash + "\n",
                          {"--web.unauthenticated-probes"});
  const std::string base = "https://127.0.0.1:" + port;
  const std::string credentials = std::string(kUser) + ":" + kPassword;

  const auto ok = Curl({"--cacert", certs_ / "ca.pem", "-u", credentials, base + "/metrics"});
  EXPECT_EQ(ok.exit_code, 0);
  EXPECT_EQ(ok.status, "200");
  EXPECT_EQ(SampleValue(ok.body, "pg_up"), 1);
  // Again: served from the cache of successful checks, same answer.
  EXPECT_EQ(Curl({"--cacert", certs_ / "ca.pem", "-u", credentials, base + "/metrics"}).status,
            "200");

  const auto anonymous = Curl({"--cacert", certs_ / "ca.pem", base + "/metrics"});
  EXPECT_EQ(anonymous.status, "401");
  EXPECT_THAT(anonymous.headers, HasSubstr("WWW-Authenticate: Basic realm=\"pgtally\""));
  EXPECT_THAT(anonymous.body, Not(HasSubstr("pg_up")));
  for (const auto& wrong : {std::string(kUser) + ":wrong", std::string("nobody:") + kPassword,
                            std::string(kUser) + ":" + kPassword + "x"}) {
    EXPECT_EQ(Curl({"--cacert", certs_ / "ca.pem", "-u", wrong, base + "/metrics"}).status, "401")
        << wrong;
  }
  EXPECT_EQ(Curl({"--cacert", certs_ / "ca.pem", base + "/"}).status, "401");
  // /probe reaches other servers with configured credentials: never without authentication.
  EXPECT_EQ(
      Curl({"--cacert", certs_ / "ca.pem", base + "/probe?target=127.0.0.1&auth_module=x"}).status,
      "401");
  // Probes answer without credentials when asked to.
  EXPECT_EQ(Curl({"--cacert", certs_ / "ca.pem", base + "/healthz"}).status, "200");
  EXPECT_EQ(Curl({"--cacert", certs_ / "ca.pem", base + "/readyz"}).status, "200");

  // No HTTPS without trusting the CA, and no plain HTTP on the port.
  EXPECT_NE(Curl({base + "/healthz"}).exit_code, 0);
  EXPECT_NE(Curl({"http://127.0.0.1:" + port + "/healthz"}).status, "200");
  // TLS 1.2 at least.
  EXPECT_NE(Curl({"--cacert", certs_ / "ca.pem", "--tls-max", "1.1", base + "/healthz"}).status,
            "200");
}

TEST_F(WebSecurity, ProbesNeedCredentialsUnlessToldOtherwise) {
  const auto port = Start("basic_auth_users:\n  " + std::string(kUser) + ": " + kHash + "\n");
  EXPECT_EQ(Curl({"http://127.0.0.1:" + port + "/healthz"}).status, "401");
  EXPECT_EQ(
      Curl({"-u", std::string(kUser) + ":" + kPassword, "http://127.0.0.1:" + port + "/healthz"})
          .status,
      "200");
}

TEST_F(WebSecurity, ReloadedUsersApplyAtOnceAndTlsChangesAskForARestart) {
  const auto port = Start("basic_auth_users:\n  " + std::string(kUser) + ": " + kHash + "\n",
                          {"--config.watch-interval=1s"});
  const std::string url = "http://127.0.0.1:" + port + "/metrics";
  const auto as = [&](const std::string& user) {
    return Curl({"-u", user + ":" + kPassword, url}).status;
  };
  EXPECT_EQ(as(kUser), "200");  // and now cached as verified

  // The user is renamed (say, a leaked account replaced): the change is seen on disk, and the
  // old user is out at once, cache and all, with no restart.
  config_dir_.Write("web.yaml", "basic_auth_users:\n  bob: " + std::string(kHash) + "\n");
  ASSERT_TRUE(process_->WaitForStderr("basic authentication users changed", 10s))
      << process_->Stderr();
  EXPECT_EQ(as(kUser), "401");
  EXPECT_EQ(as("bob"), "200");

  // Turning TLS on needs a new listener: said, not half done.
  config_dir_.Write("web.yaml", TlsConfig() + "basic_auth_users:\n  bob: " + kHash + "\n");
  process_->Signal(SIGHUP);
  ASSERT_TRUE(process_->WaitForStderr("setting=tls_server_config", 10s)) << process_->Stderr();
  EXPECT_EQ(as("bob"), "200");
}

TEST_F(WebSecurity, ClientCertificatesAreVerified) {
  const auto port =
      Start(TlsConfig("  client_auth_type: RequireAndVerifyClientCert\n"
                      "  client_ca_file: " +
                      certs_ / "ca.pem" + "\n"));
  const std::string url = "https://127.0.0.1:" + port + "/metrics";
  const auto with_cert = Curl({"--cacert", certs_ / "ca.pem", "--cert", certs_ / "client.pem",
                               "--key", certs_ / "client.key", url});
  EXPECT_EQ(with_cert.status, "200");
  EXPECT_EQ(SampleValue(with_cert.body, "pg_up"), 1);
  EXPECT_NE(Curl({"--cacert", certs_ / "ca.pem", url}).status, "200");
  EXPECT_NE(Curl({"--cacert", certs_ / "ca.pem", "--cert", certs_ / "rogue.pem", "--key",
                  certs_ / "rogue.key", url})
                .status,
            "200");
}

TEST_F(WebSecurity, RotatedCertificateIsServedWithoutRestart) {
  const auto port = Start(TlsConfig());
  const auto subject = [&] {
    Process client({"openssl", "s_client", "-connect", "127.0.0.1:" + port, "-CAfile",
                    certs_ / "ca.pem", "-verify_return_error"});
    client.Wait(20s);  // stdin is /dev/null: it ends after the handshake
    std::smatch match;
    const std::string out = client.Stdout();
    return std::regex_search(out, match, std::regex("subject=CN ?= ?(\\S+)")) ? match[1].str()
                                                                              : out;
  };
  EXPECT_EQ(subject(), "pgtally-server-1");
  certs_.Issue("server", "/CN=pgtally-server-2", true);  // cert-manager renews it in place
  EXPECT_EQ(subject(), "pgtally-server-2");
  EXPECT_EQ(Curl({"--cacert", certs_ / "ca.pem", "https://127.0.0.1:" + port + "/healthz"}).status,
            "200");
}

TEST_F(WebSecurity, PrometheusScrapesOverHttpsWithBasicAuth) {
  const auto port = Start(TlsConfig() + "basic_auth_users:\n  " + kUser + ": " + kHash + "\n");
  const std::string config =
      "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n"
      "  - job_name: pgtally\n    scheme: https\n    tls_config:\n      ca_file: " +
      certs_ / "ca.pem" + "\n    basic_auth:\n      username: " + kUser +
      "\n      password: " + kPassword +
      "\n    static_configs:\n      - targets: ['127.0.0.1:" + port + "']\n";
  PrometheusServer prometheus(config);
  std::string health, error;
  const bool up = Eventually(
      [&] {
        const auto targets = prometheus.Api("/api/v1/targets");
        const auto target = targets["data"]["activeTargets"][0];
        if (!target) return false;
        health = target["health"].as<std::string>();
        error = target["lastError"].as<std::string>();
        return health == "up";
      },
      30s);
  EXPECT_TRUE(up) << health << ": " << error << "\n" << prometheus.LogTail();
  EXPECT_TRUE(Eventually([&] { return prometheus.Query("pg_up == 1").series == 1; }, 15s));
  EXPECT_TRUE(Eventually(
      [&] { return prometheus.Query("pgtally_collector_success == 1").series > 10; }, 15s));
}

TEST_F(WebSecurity, BrokenWebConfigStopsTheStart) {
  const auto start = [&](const std::string& text) {
    const auto file = config_dir_.Write("broken.yaml", text);
    Process process({kBinary, "--web.config.file", file},
                    {"DATA_SOURCE_NAME=" + SharedPgServer().Dsn()});
    EXPECT_EQ(process.Wait(10s), 1);
    return process.Stderr();
  };
  const auto plain = start("basic_auth_users:\n  admin: hunter2-plain\n");
  EXPECT_THAT(plain, HasSubstr("broken.yaml:2:"));
  EXPECT_THAT(plain, HasSubstr("must be a bcrypt hash"));
  EXPECT_THAT(plain, Not(HasSubstr("hunter2-plain")));
  EXPECT_THAT(start("tls_server_config:\n  cert_file: x.pem\n  key_file: x.key\n  http2: true\n"),
              HasSubstr("unknown key"));
  EXPECT_THAT(
      start("tls_server_config:\n  cert_file: /nonexistent.pem\n  key_file: /nonexistent.key\n"),
      HasSubstr("cannot use cert_file /nonexistent.pem"));
  EXPECT_THAT(start("tls_server_config:\n  cert_file: a\n  key_file: b\n"
                    "  client_auth_type: RequireAndVerifyClientCert\n"),
              HasSubstr("needs client_ca_file"));
}

}  // namespace
}  // namespace pgtally::testing
