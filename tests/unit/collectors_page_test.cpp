#include "pgtally/http/collectors_page.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include "pgtally/config/collector_loader.h"

namespace pgtally {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr std::string_view kCollectors = R"(version: 1
collectors:
  - name: app_a
    help: "Rows <b>&</b> \"quoted\" 'too'"
    cache_ttl: 30s
    queries:
      - {query: "SELECT 1 AS v WHERE 1 < 2", max_version: 149999}
      - {query: "SELECT 2 AS v", min_version: 150000}
    values: [{column: v, type: gauge}]
  - name: app_b
    help: B.
    role: standby
    query: SELECT 1 AS v
    values: [{column: v, type: gauge}]
)";

std::shared_ptr<const std::vector<CollectorSpec>> Specs() {
  auto loaded = ParseCollectorFile(kCollectors, "c.yaml");
  EXPECT_TRUE(loaded.ok()) << (loaded.ok() ? "" : loaded.errors[0].ToString());
  return std::make_shared<const std::vector<CollectorSpec>>(std::move(loaded.collectors));
}

// The JSON page, parsed (JSON is YAML).
YAML::Node Json(const Exporter::CollectorsView& view) {
  return YAML::Load(CollectorsJson(view, "host=h password=xxxxx"));
}

TEST(CollectorsPage, HtmlEscapeCoversTextAndAttributes) {
  EXPECT_EQ(HtmlEscape("a<b>&\"c\"'d'"), "a&lt;b&gt;&amp;&quot;c&quot;&#39;d&#39;");
  EXPECT_EQ(HtmlEscape("plain ünïcode"), "plain ünïcode");
  EXPECT_EQ(HtmlEscape(""), "");
}

TEST(CollectorsPage, VariantText) {
  const auto specs = Specs();
  EXPECT_EQ(VariantText((*specs)[0], 0), "variant 1 of 2 (max_version 149999)");
  EXPECT_EQ(VariantText((*specs)[0], 1), "variant 2 of 2 (min_version 150000)");
  EXPECT_EQ(VariantText((*specs)[1], 0), "variant 1 of 1 (any version)");
}

TEST(CollectorsPage, BeforeTheFirstScrapeEveryCollectorIsListedAsNotRun) {
  const Exporter::CollectorsView view{Specs(), nullptr, false};
  const auto json = Json(view);
  EXPECT_TRUE(json["last_scrape"].IsNull());
  ASSERT_EQ(json["collectors"].size(), 2u);
  const auto a = json["collectors"][0];
  EXPECT_EQ(a["name"].as<std::string>(), "app_a");
  EXPECT_EQ(a["help"].as<std::string>(), "Rows <b>&</b> \"quoted\" 'too'");
  EXPECT_EQ(a["location"].as<std::string>(), "c.yaml:3:5");
  EXPECT_EQ(a["variants"].as<int>(), 2);
  EXPECT_TRUE(a["variant"].IsNull());
  EXPECT_EQ(a["state"].as<std::string>(), "not_run");
  EXPECT_EQ(a["reason"].as<std::string>(), "no_scrape_yet");
  EXPECT_TRUE(a["rows"].IsNull());
  EXPECT_EQ(a["cache_ttl_seconds"].as<double>(), 30);
  EXPECT_EQ(json["collectors"][1]["role"].as<std::string>(), "standby");

  const auto html = CollectorsHtml(view, "host=h");
  EXPECT_THAT(html, HasSubstr("not run yet"));
  EXPECT_THAT(html, HasSubstr("Rows &lt;b&gt;&amp;&lt;/b&gt; &quot;quoted&quot; &#39;too&#39;"));
  EXPECT_THAT(html, Not(HasSubstr("<b>&</b>")));

  EXPECT_EQ(Json({Specs(), nullptr, true})["collectors"][0]["reason"].as<std::string>(),
            "reloaded");
}

TEST(CollectorsPage, LastScrapeStatesReasonsAndVariants) {
  const auto specs = Specs();
  auto last = std::make_shared<CollectorsReport>();
  last->collectors = specs;
  last->up = true;
  last->server_version = 150004;
  CollectorReport a;
  a.collector = "app_a";
  a.state = CollectorReport::State::kFailed;
  a.error_class = ErrorClass::kSql;
  a.error = "syntax error at or near \"<\"\n";
  a.rows = 2;
  a.series = 0;
  a.duration_seconds = 0.25;
  CollectorReport b;
  b.collector = "app_b";
  b.skip_reason = "role";
  last->reports = {a, b};
  const Exporter::CollectorsView view{specs, last, false};

  const auto json = Json(view);
  EXPECT_EQ(json["last_scrape"]["server_version"].as<int>(), 150004);
  EXPECT_FALSE(json["last_scrape"]["in_recovery"].as<bool>());
  const auto ja = json["collectors"][0];
  EXPECT_EQ(ja["state"].as<std::string>(), "failed");
  EXPECT_TRUE(ja["reason"].IsNull());
  EXPECT_EQ(ja["error_class"].as<std::string>(), "sql");
  EXPECT_EQ(ja["error"].as<std::string>(), "syntax error at or near \"<\"\n");
  EXPECT_EQ(ja["variant"]["index"].as<int>(), 2);
  EXPECT_EQ(ja["variant"]["min_version"].as<int>(), 150000);
  EXPECT_TRUE(ja["variant"]["max_version"].IsNull());
  EXPECT_EQ(ja["rows"].as<int>(), 2);
  EXPECT_EQ(ja["duration_seconds"].as<double>(), 0.25);
  EXPECT_FALSE(ja["cached"].as<bool>());
  const auto jb = json["collectors"][1];
  EXPECT_EQ(jb["state"].as<std::string>(), "skipped");
  EXPECT_EQ(jb["reason"].as<std::string>(), "role");
  EXPECT_TRUE(jb["rows"].IsNull());  // never ran

  const auto html = CollectorsHtml(view, "host=h");
  EXPECT_THAT(html, HasSubstr("variant 2 of 2 (min_version 150000)"));
  EXPECT_THAT(html, HasSubstr("sql: <pre>syntax error at or near &quot;&lt;&quot;"));
  EXPECT_THAT(html, HasSubstr("<pre>SELECT 2 AS v</pre>"));
  EXPECT_THAT(html, HasSubstr("role: runs on a standby only"));

  // A scrape that did not reach the server ran nothing.
  auto down = std::make_shared<CollectorsReport>();
  down->collectors = specs;
  const auto json_down = Json({specs, down, false});
  EXPECT_FALSE(json_down["last_scrape"]["up"].as<bool>());
  EXPECT_EQ(json_down["collectors"][0]["reason"].as<std::string>(), "down");
}

}  // namespace
}  // namespace pgtally
