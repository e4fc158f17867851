// Faults a production exporter meets, each against real processes: the database killed or its
// backend terminated in the middle of a scrape, its connection slots exhausted, a crowd of
// concurrent scrapes, slow clients, oversized requests, and a query that returns a million rows.
// Every scrape must answer within its deadline, say what happened, and recover by itself.

#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <future>
#include <thread>

#include "http_client.h"
#include "os_util.h"
#include "pg_client.h"
#include "pg_server.h"
#include "pgtally_process.h"
#include "process.h"
#include "promtool.h"
#include "temp_dir.h"
#include "test_exporter.h"

namespace pgtally::testing {
namespace {

using ::testing::HasSubstr;
using namespace std::chrono_literals;

const std::string kBinary = PGTALLY_BINARY;

std::string SleepCollector(const std::string& name, int seconds) {
  return "version: 1\ncollectors:\n  - name: " + name +
         "\n    help: Sleeps.\n    timeout: 60s\n    query: SELECT 1 AS v FROM pg_sleep(" +
         std::to_string(seconds) + ")\n    values: [{column: v, type: gauge}]\n";
}

// Waits until a backend of `pg` runs a statement containing `text`.
bool Running(const PgServer& pg, const std::string& text) {
  return Eventually(
      [&] {
        return pg.QueryValue(
                   "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND "
                   "query LIKE '%" +
                   text + "%' AND pid <> pg_backend_pid()") != "0";
      },
      10s);
}

long PeakRssKib(pid_t pid) {
  const std::string status = ReadFile("/proc/" + std::to_string(pid) + "/status");
  const auto at = status.find("VmHWM:");
  return at == std::string::npos ? -1 : std::stol(status.substr(at + 6));
}

// Slowloris: clients that open a request and then send one more header line every 200 ms,
// never finishing it, to hold the server's connection slots.
class SlowClients {
 public:
  explicit SlowClients(int port) : port_(port) {
    dripper_ = std::thread([this] {
      while (!stop_) {
        {
          std::lock_guard lock(mutex_);
          for (int fd : fds_) {
            // MSG_NOSIGNAL: the server closing on us is the expected outcome, not a crash.
            (void)send(fd, "X-Slow: 1\r\n", 11, MSG_NOSIGNAL);
          }
        }
        std::this_thread::sleep_for(200ms);
      }
    });
  }
  ~SlowClients() {
    stop_ = true;
    dripper_.join();
    for (int fd : fds_) close(fd);
  }

  void Open(int count) {
    for (int i = 0; i < count; ++i) {
      const int fd = socket(AF_INET, SOCK_STREAM, 0);
      sockaddr_in address{};
      address.sin_family = AF_INET;
      address.sin_port = htons(static_cast<uint16_t>(port_));
      address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
      const std::string start = "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n";
      ASSERT_EQ(send(fd, start.data(), start.size(), MSG_NOSIGNAL),
                static_cast<ssize_t>(start.size()));
      std::lock_guard lock(mutex_);
      fds_.push_back(fd);
    }
  }

  // How many of them the server has answered or hung up on.
  int CutOff() {
    std::lock_guard lock(mutex_);
    int cut = 0;
    for (int fd : fds_) {
      pollfd readable{fd, POLLIN, 0};
      cut += poll(&readable, 1, 0) == 1;
    }
    return cut;
  }

 private:
  int port_;
  std::mutex mutex_;
  std::vector<int> fds_;
  std::atomic<bool> stop_ = false;
  std::thread dripper_;
};

TEST(Resilience, DatabaseKilledMidScrapeAnswersAndRecovers) {
  PgServer pg(PgServer::Options{.pg_stat_statements = false});
  auto exporter = MakeExporter(pg.Dsn(), SleepCollector("sleepy", 3));
  auto scrape = std::async(std::launch::async, [&] { return ScrapeBody(*exporter, 20000ms); });
  ASSERT_TRUE(Running(pg, "pg_sleep(3)"));
  const auto killed = std::chrono::steady_clock::now();
  pg.Crash();
  const auto body = scrape.get();
  EXPECT_LT(std::chrono::steady_clock::now() - killed, 5s);
  EXPECT_EQ(SampleValue(body, "pgtally_collector_success{collector=\"sleepy\"}"), 0);
  EXPECT_EQ(SampleValue(
                body, "pgtally_collector_errors_total{class=\"connection\",collector=\"sleepy\"}"),
            1);
  EXPECT_EQ(SampleValue(ScrapeBody(*exporter, 5000ms), "pg_up"), 0);

  pg.Start();  // crash recovery
  EXPECT_TRUE(
      Eventually([&] { return SampleValue(ScrapeBody(*exporter, 8000ms), "pg_up") == 1; }, 40s));
}

TEST(Resilience, TerminatedBackendFailsOneCollectorOnce) {
  auto& pg = SharedPgServer();
  auto exporter = MakeExporter(pg.Dsn(), SleepCollector("terminated", 2));
  auto scrape = std::async(std::launch::async, [&] { return ScrapeBody(*exporter, 20000ms); });
  ASSERT_TRUE(Running(pg, "pg_sleep(2)"));
  pg.Exec(
      "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE "
      "'%pg_sleep(2)%' AND pid <> pg_backend_pid()");
  const auto body = scrape.get();
  EXPECT_EQ(SampleValue(body, "pgtally_collector_success{collector=\"terminated\"}"), 0);
  // The next scrape connects again and succeeds.
  const auto next = ScrapeBody(*exporter, 20000ms);
  EXPECT_EQ(SampleValue(next, "pg_up"), 1);
  EXPECT_EQ(SampleValue(next, "pgtally_collector_success{collector=\"terminated\"}"), 1);
}

TEST(Resilience, ExhaustedConnectionSlotsAreReportedThenRecovered) {
  PgServer pg(PgServer::Options{
      .pg_stat_statements = false,
      .extra_conf = {"max_connections = 6", "superuser_reserved_connections = 1"}});
  pg.Exec("CREATE ROLE monitor LOGIN IN ROLE pg_monitor; CREATE ROLE app LOGIN");
  const std::string base = "host=127.0.0.1 port=" + std::to_string(pg.port()) + " dbname=postgres";
  // The application takes every slot a non-superuser may have.
  std::vector<Conn> hogs;
  for (int i = 0; i < 5; ++i) hogs.push_back(Connect(base + " user=app"));
  EXPECT_THROW(Connect(base + " user=app"), std::runtime_error);

  PgtallyProcess pgtally(
      {"--no-collectors.builtin", "--collectors.path", PGTALLY_SOURCE_DIR "/queries/activity.yaml"},
      {"DATA_SOURCE_NAME=" + base + " user=monitor"});
  const std::string& url = pgtally.url();
  ASSERT_FALSE(url.empty()) << pgtally.Stderr();
  Process& process = pgtally.process();
  EXPECT_EQ(SampleValue(HttpGet(url + "/metrics").body, "pg_up"), 0);
  // PostgreSQL words it by who may still connect: "too many clients already", or "remaining
  // connection slots are reserved ..." when only superuser slots are left.
  EXPECT_TRUE(process.WaitForStderr("connection slots are reserved", 5s) ||
              process.WaitForStderr("too many clients", 1s))
      << process.Stderr();

  hogs.pop_back();
  EXPECT_TRUE(
      Eventually([&] { return SampleValue(HttpGet(url + "/metrics").body, "pg_up") == 1; }, 30s));
}

TEST(Resilience, FiftyConcurrentScrapesAllAnswer) {
  PgtallyProcess pgtally({}, {"DATA_SOURCE_NAME=" + SharedPgServer().Dsn()});
  const std::string& url = pgtally.url();
  ASSERT_FALSE(url.empty()) << pgtally.Stderr();
  const auto start = std::chrono::steady_clock::now();
  std::vector<std::future<HttpResponse>> scrapes;
  for (int i = 0; i < 50; ++i) {
    scrapes.push_back(std::async(std::launch::async, [&] { return HttpGet(url + "/metrics"); }));
  }
  int answered = 0;
  for (auto& scrape : scrapes) {
    const auto response = scrape.get();
    answered += response.status == 200 && SampleValue(response.body, "pg_up") == 1;
  }
  EXPECT_EQ(answered, 50);
  // Coalesced into a few database runs, so the crowd costs about one scrape per worker round.
  EXPECT_LT(std::chrono::steady_clock::now() - start, 20s);
  EXPECT_EQ(HttpGet(url + "/healthz").status, 200);
}

TEST(Resilience, SlowClientsDelayScrapesOnlyBoundedly) {
  PgtallyProcess pgtally({}, {"DATA_SOURCE_NAME=" + SharedPgServer().Dsn()});
  const std::string& url = pgtally.url();
  ASSERT_FALSE(url.empty()) << pgtally.Stderr();
  SlowClients slow(pgtally.port());

  // Fewer slow clients than connection workers (32): scrapes do not notice them.
  slow.Open(24);
  std::this_thread::sleep_for(500ms);
  auto scrape = HttpGet(url + "/metrics");
  EXPECT_EQ(scrape.status, 200);
  EXPECT_EQ(SampleValue(scrape.body, "pg_up"), 1);
  EXPECT_LT(scrape.seconds, 3.0);

  // More than the workers: a scrape waits at most until the request timeout (5 s) cuts the
  // slow ones off, however long they keep dripping.
  slow.Open(24);
  std::this_thread::sleep_for(500ms);
  scrape = HttpGet(url + "/metrics");
  EXPECT_EQ(scrape.status, 200);
  EXPECT_EQ(SampleValue(scrape.body, "pg_up"), 1);
  EXPECT_LT(scrape.seconds, 9.0);
  EXPECT_TRUE(Eventually([&] { return slow.CutOff() == 48; }, 15s)) << slow.CutOff();
  std::printf("slowloris: with 48 dripping clients a scrape took %.2f s\n", scrape.seconds);
  EXPECT_EQ(HttpGet(url + "/healthz").status, 200);
}

TEST(Resilience, OversizedRequestsAreRefused) {
  PgtallyProcess pgtally({}, {"DATA_SOURCE_NAME=host=127.0.0.1 port=1"});
  const std::string& url = pgtally.url();
  ASSERT_FALSE(url.empty()) << pgtally.Stderr();
  const auto huge = HttpGet(url + "/metrics", {"X-Padding: " + std::string(100'000, 'x')});
  EXPECT_NE(huge.status, 200);
  const auto long_path = HttpGet(url + "/" + std::string(100'000, 'a'));
  EXPECT_NE(long_path.status, 200);
  EXPECT_EQ(HttpGet(url + "/healthz").status, 200);  // and it still serves
}

TEST(Resilience, AQueryFailingPartWayThroughItsRowsEmitsNone) {
  // Rows stream into the collector as they arrive; an error after a thousand of them must still
  // fail the collector as a whole, not leave half its series.
  auto exporter = MakeExporter(SharedPgServer().Dsn(),
                               "version: 1\ncollectors:\n  - name: partial\n    help: Fails.\n"
                               "    query: SELECT g::text AS id, 1 / (1001 - g) AS v FROM "
                               "generate_series(1, 2000) g\n    labels: [id]\n"
                               "    values: [{column: v, type: gauge}]\n");
  const auto body = ScrapeBody(*exporter);
  EXPECT_EQ(SampleValue(body, "pgtally_collector_success{collector=\"partial\"}"), 0);
  EXPECT_TRUE(LinesStartingWith(body, "partial_v").empty());
  EXPECT_EQ(SampleValue(body, "pg_up"), 1);
}

TEST(Resilience, AwkwardLabelValuesAreEscaped) {
  // Quotes, backslashes, a newline, non-ASCII text, a value at the 8 KiB bound on label values
  // and a 1 MB one past it. (PostgreSQL text cannot hold NUL; the unit tests and the fuzzer feed
  // those.)
  auto exporter = MakeExporter(SharedPgServer().Dsn(),
                               "version: 1\ncollectors:\n  - name: awkward\n    help: Text.\n"
                               "    query: SELECT * FROM (VALUES ('caf\u00e9 \u2603', 1), "
                               "(E'quote\" back\\\\slash\\nline', 2), (repeat('x', 8192), 3), "
                               "(repeat('y', 1000000), 4)) AS t(name, v)\n"
                               "    labels: [name]\n    values: [{column: v, type: gauge}]\n");
  const auto body = ScrapeBody(*exporter);
  EXPECT_EQ(SampleValue(body, "pgtally_collector_success{collector=\"awkward\"}"), 1);
  EXPECT_EQ(SampleValue(body, "awkward_v{name=\"caf\u00e9 \u2603\"}"), 1);
  EXPECT_EQ(SampleValue(body, "awkward_v{name=\"quote\\\" back\\\\slash\\nline\"}"), 2);
  EXPECT_EQ(SampleValue(body, "awkward_v{name=\"" + std::string(8192, 'x') + "\"}"), 3);
  // The 1 MB value is no name: its row is dropped and counted (issue 16).
  EXPECT_TRUE(LinesStartingWith(body, "awkward_v{name=\"yyy").empty());
  EXPECT_EQ(SampleValue(
                body, "pgtally_samples_dropped_total{collector=\"awkward\",reason=\"too_large\"}"),
            1);
  EXPECT_EQ(PromtoolCheckMetrics(body), "");
}

TEST(Resilience, InvalidUtf8InTheDatabaseFailsOnlyItsCollector) {
  // A SQL_ASCII database holds any bytes. pgtally asks for UTF-8, so the server itself refuses
  // to send invalid text: the collector fails with that reason, the rest of the scrape stands.
  const auto& pg = SharedPgServer();
  pg.Exec(
      "CREATE DATABASE bytes ENCODING 'SQL_ASCII' LC_COLLATE 'C' LC_CTYPE 'C' "
      "TEMPLATE template0");
  pg.Exec("CREATE TABLE names AS SELECT E'caf\\xe9' AS name, 1 AS v", "bytes");
  auto exporter = MakeExporter(pg.Dsn("bytes"),
                               "version: 1\ncollectors:\n  - name: latin\n    help: Bytes.\n"
                               "    query: SELECT name, v FROM names\n    labels: [name]\n"
                               "    values: [{column: v, type: gauge}]\n"
                               "  - name: fine\n    help: Fine.\n    query: SELECT 1 AS v\n"
                               "    values: [{column: v, type: gauge}]\n");
  const auto body = ScrapeBody(*exporter);
  EXPECT_EQ(SampleValue(body, "pgtally_collector_success{collector=\"latin\"}"), 0);
  EXPECT_EQ(SampleValue(body, "pgtally_collector_errors_total{class=\"sql\",collector=\"latin\"}"),
            1);
  EXPECT_EQ(SampleValue(body, "fine_v"), 1);
  EXPECT_EQ(SampleValue(body, "pg_up"), 1);
  EXPECT_EQ(PromtoolCheckMetrics(body), "");
  exporter.reset();
  pg.Exec("DROP DATABASE bytes");
}

TEST(Resilience, AMillionRowsAreCappedAndMemoryStaysBounded) {
  TempDir dir;
  const auto file =
      dir.Write("bomb.yaml",
                "version: 1\ncollectors:\n  - name: bomb\n    help: A cardinality bomb.\n"
                "    timeout: 60s\n    max_series: 5000\n"
                "    query: SELECT g::text AS id, repeat('x', 40) AS pad, g AS v FROM "
                "generate_series(1, 1000000) g\n    labels: [id, pad]\n"
                "    values: [{column: v, type: gauge}]\n");
  PgtallyProcess pgtally(
      {"--no-collectors.builtin", "--collectors.path", file, "--scrape.timeout=60s"},
      {"DATA_SOURCE_NAME=" + SharedPgServer().Dsn()});
  const std::string& url = pgtally.url();
  ASSERT_FALSE(url.empty()) << pgtally.Stderr();
  Process& process = pgtally.process();
  for (int scrape = 0; scrape < 3; ++scrape) {
    const auto body = HttpGet(url + "/metrics").body;
    EXPECT_EQ(SampleValue(body, "pgtally_collector_series{collector=\"bomb\"}"), 5000);
    EXPECT_EQ(LinesStartingWith(body, "bomb_v{").size(), 5000u);
    EXPECT_EQ(
        SampleValue(body, "pgtally_samples_dropped_total{collector=\"bomb\",reason=\"limit\"}"),
        995000.0 * (scrape + 1));
  }
  const long peak = PeakRssKib(process.pid());
  // Rows stream through one at a time (libpq's single-row mode) and only the capped series are
  // kept: the whole result would take about 260 MB. 64 MiB leaves room under the sidecar's
  // 128Mi limit.
  EXPECT_GT(peak, 0);
#ifndef PGTALLY_SANITIZED
  EXPECT_LT(peak, 64 * 1024) << "peak RSS " << peak << " KiB";
#endif
  std::printf("cardinality bomb: peak RSS %ld KiB after three scrapes of 1,000,000 rows\n", peak);
  EXPECT_THAT(process.Stderr(), HasSubstr("collector over its series limit"));
}

}  // namespace
}  // namespace pgtally::testing
