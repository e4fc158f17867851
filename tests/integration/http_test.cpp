// The HTTP endpoints, served by CivetWeb on a free loopback port, scraped with libcurl and
// checked with promtool.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "http_client.h"
#include "pg_server.h"
#include "pgtally/http/http_server.h"
#include "promtool.h"
#include "test_exporter.h"

namespace pgtally::testing {
namespace {

using ::testing::HasSubstr;

class HttpTest : public ::testing::Test {
 protected:
  void SetUp() override {
    exporter_ = MakeExporter(SharedPgServer().Dsn(), "", /*builtin=*/true);
    server_ = std::make_unique<HttpServer>(HttpOptions{"127.0.0.1:0", "/metrics", Millis(10000)},
                                           *exporter_);
    base_ = "http://127.0.0.1:" + std::to_string(server_->ports().at(0));
  }

  std::unique_ptr<Exporter> exporter_;
  std::unique_ptr<HttpServer> server_;
  std::string base_;
};

TEST_F(HttpTest, MetricsEndpoint) {
  const auto response = HttpGet(base_ + "/metrics");
  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(response.content_type, "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_EQ(SampleValue(response.body, "pg_up"), 1);
}

TEST_F(HttpTest, LandingHealthAndReadiness) {
  auto landing = HttpGet(base_ + "/");
  EXPECT_EQ(landing.status, 200);
  EXPECT_THAT(landing.body, HasSubstr("<a href=\"/metrics\">"));
  EXPECT_EQ(HttpGet(base_ + "/healthz").body, "ok\n");
  auto ready = HttpGet(base_ + "/readyz");
  EXPECT_EQ(ready.status, 200);
  EXPECT_THAT(ready.body, HasSubstr("database: unknown"));
  HttpGet(base_ + "/metrics");
  EXPECT_THAT(HttpGet(base_ + "/readyz").body, HasSubstr("database: reachable"));
  EXPECT_EQ(HttpGet(base_ + "/nothing-here").status, 404);
  EXPECT_EQ(HttpGet(base_ + "/metricsx").status, 404);
}

TEST_F(HttpTest, GzipWhenTheClientAcceptsIt) {
  // Prometheus sends "Accept-Encoding: gzip"; the Prometheus server tests read such responses.
  const auto plain = HttpGet(base_ + "/metrics");
  const auto compressed = HttpGet(base_ + "/metrics", {"Accept-Encoding: gzip"});
  ASSERT_EQ(compressed.status, 200);
  ASSERT_GT(compressed.body.size(), 2u);
  EXPECT_EQ(compressed.body.substr(0, 2), "\x1f\x8b");  // the gzip magic
  EXPECT_LT(compressed.body.size() * 4, plain.body.size());
  std::printf("gzip: %zu bytes of exposition sent as %zu\n", plain.body.size(),
              compressed.body.size());
  const auto refused = HttpGet(base_ + "/metrics", {"Accept-Encoding: gzip;q=0"});
  EXPECT_EQ(SampleValue(refused.body, "pg_up"), 1);
}

TEST_F(HttpTest, ExpositionPassesPromtool) {
  const auto response = HttpGet(base_ + "/metrics");
  ASSERT_EQ(response.status, 200);
  EXPECT_EQ(PromtoolCheckMetrics(response.body), "");
}

TEST(HttpBudget, ScraperTimeoutHeaderIsHonoured) {
  auto exporter = MakeExporter(SharedPgServer().Dsn(), R"yaml(version: 1
collectors:
  - {name: sleepy, help: S., timeout: 60s, query: "SELECT 1 AS v FROM pg_sleep(20)", values: [{column: v, type: gauge}]}
)yaml");
  HttpServer server(HttpOptions{"127.0.0.1:0", "/metrics", Millis(30000)}, *exporter);
  const auto url = "http://127.0.0.1:" + std::to_string(server.ports().at(0)) + "/metrics";
  const auto response = HttpGet(url, {"X-Prometheus-Scrape-Timeout-Seconds: 2"});
  EXPECT_EQ(response.status, 200);
  EXPECT_LT(response.seconds, 2.5);
  EXPECT_EQ(SampleValue(response.body, "pg_up"), 1);
  EXPECT_EQ(SampleValue(response.body, "pgtally_collector_success{collector=\"sleepy\"}"), 0);
}

TEST(HttpListen, PortInUseIsAClearError) {
  auto exporter = MakeExporter("host=127.0.0.1 port=1", "");
  HttpServer first(HttpOptions{"127.0.0.1:0", "/metrics", Millis(1000)}, *exporter);
  const auto taken = "127.0.0.1:" + std::to_string(first.ports().at(0));
  try {
    HttpServer second(HttpOptions{taken, "/metrics", Millis(1000)}, *exporter);
    ADD_FAILURE() << "a second server listened on a taken port";
  } catch (const std::runtime_error& e) {
    EXPECT_THAT(e.what(), HasSubstr("cannot listen on " + taken));
    EXPECT_THAT(e.what(), HasSubstr("Address already in use"));
  }
}

}  // namespace
}  // namespace pgtally::testing
