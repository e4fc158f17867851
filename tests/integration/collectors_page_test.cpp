// The /collectors page of the real binary against a real PostgreSQL 15: collectors that succeed,
// are skipped for their version, are unavailable and fail, as HTML and as JSON; the page before
// any scrape (and that it never scrapes); masking of secrets in error messages; and basic
// authentication, as on the other endpoints.

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include "http_client.h"
#include "pg_server.h"
#include "pgtally_process.h"
#include "temp_dir.h"

namespace pgtally::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

// The DSN's password: trust authentication ignores it, but pgtally registers it as a secret, and
// page_broken's error message quotes it.
constexpr const char* kPassword = "page-Secret-3";

const std::string kCollectors = std::string(R"(version: 1
collectors:
  - name: page_ok
    help: "Three rows <b>& a quote \" here"
    cache_ttl: 1h
    queries:
      - {query: "SELECT 1 AS n, 1 AS v", max_version: 139999}
      - {query: "SELECT g AS n, g * 10 AS v FROM generate_series(1, 3) g", min_version: 140000}
    labels: [n]
    values: [{column: v, type: gauge}]
  - name: page_old
    help: Only before PostgreSQL 15.
    max_version: 149999
    query: SELECT 1 AS v
    values: [{column: v, type: gauge}]
  - name: page_missing
    help: On a relation that does not exist.
    optional: true
    query: SELECT count(*) AS v FROM page_no_such_table
    values: [{column: v, type: gauge}]
  - name: page_broken
    help: Bad SQL.
    query: SELECT ')") + kPassword +
                                R"('::int AS v
    values: [{column: v, type: gauge}]
)";

class CollectorsPage : public ::testing::Test {
 protected:
  // Starts pgtally with the collectors above and `flags`.
  void Start(std::vector<std::string> flags = {}) {
    flags.insert(flags.end(), {"--no-collectors.builtin", "--collectors.path",
                               dir_.Write("collectors/page.yaml", kCollectors)});
    process_ = std::make_unique<PgtallyProcess>(
        flags,
        std::vector<std::string>{"DATA_SOURCE_NAME=" + pg_.Dsn() + " password=" + kPassword});
    ASSERT_FALSE(process_->url().empty()) << process_->Stderr();
  }

  // The JSON page, parsed (JSON is YAML), and its collectors by name.
  std::map<std::string, YAML::Node> Collectors(const std::vector<std::string>& headers = {}) {
    const auto response = HttpGet(process_->url() + "/collectors?format=json", headers);
    EXPECT_EQ(response.status, 200) << response.body;
    EXPECT_THAT(response.content_type, StartsWith("application/json"));
    EXPECT_THAT(response.body, Not(HasSubstr(kPassword)));
    last_json_ = YAML::Load(response.body);
    std::map<std::string, YAML::Node> by_name;
    for (const YAML::Node& collector : last_json_["collectors"]) {
      by_name[collector["name"].as<std::string>()] = collector;
    }
    return by_name;
  }

  PgServer& pg_ = SharedPgServer();
  TempDir dir_;
  std::unique_ptr<PgtallyProcess> process_;
  YAML::Node last_json_;
};

TEST_F(CollectorsPage, BeforeAnyScrapeEveryCollectorIsListedAndNothingRuns) {
  Start();
  for (int i = 0; i < 2; ++i) {  // the page itself never scrapes: still nothing the second time
    auto collectors = Collectors();
    EXPECT_TRUE(last_json_["last_scrape"].IsNull());
    ASSERT_EQ(collectors.size(), 4u);
    for (auto& [name, collector] : collectors) {
      EXPECT_EQ(collector["state"].as<std::string>(), "not_run") << name;
      EXPECT_EQ(collector["reason"].as<std::string>(), "no_scrape_yet") << name;
      EXPECT_TRUE(collector["rows"].IsNull()) << name;
      EXPECT_TRUE(collector["variant"].IsNull()) << name;
    }
    EXPECT_EQ(collectors["page_ok"]["location"].as<std::string>(),
              dir_ / "collectors/page.yaml" + ":3:5");
    EXPECT_EQ(collectors["page_ok"]["variants"].as<int>(), 2);
  }
  const auto html = HttpGet(process_->url() + "/collectors");
  EXPECT_EQ(html.status, 200);
  EXPECT_THAT(html.content_type, StartsWith("text/html"));
  EXPECT_THAT(html.body, HasSubstr("not run yet"));
  EXPECT_THAT(html.body, HasSubstr("page_broken"));
  EXPECT_EQ(HttpGet(process_->url() + "/collectors?format=xml").status, 400);
  // The landing page links it.
  EXPECT_THAT(HttpGet(process_->url() + "/").body, HasSubstr("<a href=\"/collectors\">"));
}

TEST_F(CollectorsPage, ShowsHowEachCollectorDidInTheLastScrape) {
  Start();
  ASSERT_EQ(HttpGet(process_->url() + "/metrics").status, 200);
  auto collectors = Collectors();
  ASSERT_EQ(collectors.size(), 4u);
  const auto scrape = last_json_["last_scrape"];
  EXPECT_TRUE(scrape["up"].as<bool>());
  EXPECT_GE(scrape["server_version"].as<int>(), 150000);
  EXPECT_LT(scrape["server_version"].as<int>(), 160000);
  EXPECT_FALSE(scrape["in_recovery"].as<bool>());

  const auto ok = collectors["page_ok"];
  EXPECT_EQ(ok["state"].as<std::string>(), "success");
  EXPECT_TRUE(ok["reason"].IsNull());
  EXPECT_TRUE(ok["error"].IsNull());
  EXPECT_EQ(ok["help"].as<std::string>(), "Three rows <b>& a quote \" here");
  EXPECT_EQ(ok["scope"].as<std::string>(), "server");
  EXPECT_EQ(ok["role"].as<std::string>(), "any");
  EXPECT_EQ(ok["target_type"].as<std::string>(), "postgres");
  EXPECT_EQ(ok["variant"]["index"].as<int>(), 2);
  EXPECT_EQ(ok["variant"]["min_version"].as<int>(), 140000);
  EXPECT_TRUE(ok["variant"]["max_version"].IsNull());
  EXPECT_EQ(ok["variant"]["description"].as<std::string>(), "variant 2 of 2 (min_version 140000)");
  EXPECT_EQ(ok["rows"].as<int>(), 3);
  EXPECT_EQ(ok["series"].as<int>(), 3);
  EXPECT_GT(ok["duration_seconds"].as<double>(), 0);
  EXPECT_EQ(ok["cache_ttl_seconds"].as<double>(), 3600);
  EXPECT_FALSE(ok["cached"].as<bool>());

  const auto old = collectors["page_old"];
  EXPECT_EQ(old["state"].as<std::string>(), "skipped");
  EXPECT_EQ(old["reason"].as<std::string>(), "version");
  EXPECT_TRUE(old["variant"].IsNull());
  EXPECT_TRUE(old["rows"].IsNull());

  const auto missing = collectors["page_missing"];
  EXPECT_EQ(missing["state"].as<std::string>(), "skipped");
  EXPECT_EQ(missing["reason"].as<std::string>(), "unavailable");
  EXPECT_EQ(missing["error_class"].as<std::string>(), "sql");
  EXPECT_THAT(missing["error"].as<std::string>(),
              HasSubstr("relation \"page_no_such_table\" does not exist"));
  // First where the server found it, in the file: line 19, where page_no_such_table is written.
  EXPECT_THAT(missing["error"].as<std::string>(),
              StartsWith(dir_ / "collectors/page.yaml" + ":19:38: "));
  EXPECT_EQ(missing["rows"].as<int>(), 0);
  EXPECT_EQ(missing["variant"]["description"].as<std::string>(), "variant 1 of 1 (any version)");

  const auto broken = collectors["page_broken"];
  EXPECT_EQ(broken["state"].as<std::string>(), "failed");
  EXPECT_TRUE(broken["reason"].IsNull());
  EXPECT_EQ(broken["error_class"].as<std::string>(), "sql");
  // The server quotes the text it could not read, which is the password: masked.
  EXPECT_THAT(broken["error"].as<std::string>(),
              HasSubstr("invalid input syntax for type integer: \"xxxxx\""));
  EXPECT_THAT(broken["error"].as<std::string>(),
              StartsWith(dir_ / "collectors/page.yaml" + ":23:19: "));
  EXPECT_EQ(broken["rows"].as<int>(), 0);
  EXPECT_EQ(broken["series"].as<int>(), 0);

  const auto html = HttpGet(process_->url() + "/collectors");
  EXPECT_EQ(html.status, 200);
  for (const char* name : {"page_ok", "page_old", "page_missing", "page_broken"}) {
    EXPECT_THAT(html.body, HasSubstr(std::string("<b>") + name + "</b>"));
  }
  EXPECT_THAT(html.body, HasSubstr("Three rows &lt;b&gt;&amp; a quote &quot; here"));
  EXPECT_THAT(html.body, Not(HasSubstr("<b>& a quote")));
  EXPECT_THAT(html.body, HasSubstr("variant 2 of 2 (min_version 140000)"));
  EXPECT_THAT(html.body, HasSubstr("relation &quot;page_no_such_table&quot; does not exist"));
  EXPECT_THAT(html.body, HasSubstr("invalid input syntax for type integer: &quot;xxxxx&quot;"));
  EXPECT_THAT(html.body, Not(HasSubstr("not run yet")));
  EXPECT_THAT(html.body, Not(HasSubstr(kPassword)));  // nor in page_broken's SQL

  // A second scrape serves page_ok from its cache, and says so.
  ASSERT_EQ(HttpGet(process_->url() + "/metrics").status, 200);
  collectors = Collectors();
  EXPECT_TRUE(collectors["page_ok"]["cached"].as<bool>());
  EXPECT_EQ(collectors["page_ok"]["rows"].as<int>(), 3);
  EXPECT_FALSE(collectors["page_broken"]["cached"].as<bool>());
}

TEST_F(CollectorsPage, NeedsCredentialsWhenBasicAuthIsConfigured) {
  // bcrypt of "scrape-Secret-7" for the user prometheus, as in web_security_test.cpp.
  Start({"--web.config.file",
         dir_.Write("web.yaml",
                    "basic_auth_users:\n  prometheus: "
                    "$2y$10$earowbtQjbpy8IP46MY9LOEAq9RD/uHLuQhhYByezaoDMYo0KpzH.\n")});
  for (const char* path : {"/collectors", "/collectors?format=json"}) {
    const auto anonymous = HttpGet(process_->url() + path);
    EXPECT_EQ(anonymous.status, 401) << path;
    EXPECT_THAT(anonymous.body, Not(HasSubstr("page_ok"))) << path;
    EXPECT_EQ(
        HttpGet(process_->url() + path, {"Authorization: Basic cHJvbWV0aGV1czp3cm9uZw=="}).status,
        401)
        << path;  // prometheus:wrong
  }
  const auto collectors = Collectors({"Authorization: Basic cHJvbWV0aGV1czpzY3JhcGUtU2VjcmV0LTc="});
  EXPECT_EQ(collectors.size(), 4u);
}

}  // namespace
}  // namespace pgtally::testing
