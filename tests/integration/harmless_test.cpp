// The exporter never harms the database it watches, and no client can make it lie (issue 16):
// the connection budget on a server with more databases than slots, a hostile scrape-timeout
// header, session locks a collector leaves, pg_up after a restart, and the role's privileges.
// Each test prints the figure it measures.

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <future>
#include <set>
#include <sstream>
#include <thread>

#include "http_client.h"
#include "os_util.h"
#include "pg_client.h"
#include "pg_server.h"
#include "pgtally/pg/connection.h"
#include "pgtally_process.h"
#include "process.h"
#include "temp_dir.h"
#include "test_exporter.h"

namespace pgtally::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr std::string_view kPerDatabase = R"yaml(version: 1
collectors:
  - {name: per_db, help: D., scope: database, query: SELECT 1 AS v, values: [{column: v, type: gauge}]}
  - {name: server, help: S., query: SELECT 1 AS v, values: [{column: v, type: gauge}]}
)yaml";

// The TCP connections process `pid` has open to `port` on loopback: its sockets (/proc/PID/fd)
// that /proc/net/tcp lists as established to that port.
int ConnectionsTo(pid_t pid, int port) {
  std::set<std::string> inodes;
  const std::string fds = "/proc/" + std::to_string(pid) + "/fd";
  std::error_code ignored;
  for (const auto& fd : std::filesystem::directory_iterator(fds, ignored)) {
    const auto target = std::filesystem::read_symlink(fd.path(), ignored).string();
    if (target.starts_with("socket:[")) inodes.insert(target.substr(8, target.size() - 9));
  }
  std::istringstream table(ReadFile("/proc/net/tcp"));
  std::string line;
  std::getline(table, line);  // the heading
  int count = 0;
  const std::string remote = fmt::format(":{:04X}", port);
  while (std::getline(table, line)) {
    std::istringstream fields(line);
    std::string slot, local, peer, state, queues, timer, retransmits, uid, timeout, inode;
    fields >> slot >> local >> peer >> state >> queues >> timer >> retransmits >> uid >> timeout >>
        inode;
    if (peer.ends_with(remote) && state == "01" && inodes.contains(inode)) ++count;
  }
  return count;
}

// The most connections pgtally held at once while `work` ran, sampled every 5 ms: as pgtally
// holds them (its sockets), and as the server counts them (backends, which outlive a closed
// connection by the moment they take to exit).
std::pair<int, int> PeakConnections(const PgServer& pg, pid_t pgtally,
                                    const std::function<void()>& work) {
  std::atomic<bool> done{false};
  std::atomic<int> held{0};
  std::atomic<int> backends{0};
  std::thread sampler([&] {
    const Conn conn = Connect(pg.Dsn());
    while (!done) {
      held = std::max(held.load(), ConnectionsTo(pgtally, pg.port()));
      PGresult* result = PQexec(
          conn.get(), "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'pgtally'");
      if (PQresultStatus(result) == PGRES_TUPLES_OK) {
        backends = std::max(backends.load(), std::atoi(PQgetvalue(result, 0, 0)));
      }
      PQclear(result);
      std::this_thread::sleep_for(5ms);
    }
  });
  work();
  done = true;
  sampler.join();
  return {held, backends};
}

TEST(ConnectionBudget, MoreDatabasesThanTheBudgetAreVisitedInTurn) {
  PgServer pg(PgServer::Options{
      .pg_stat_statements = false,
      .extra_conf = {"max_connections = 20", "superuser_reserved_connections = 2"}});
  constexpr int kDatabases = 30;
  for (int i = 0; i < kDatabases; ++i) pg.Exec("CREATE DATABASE budget_" + std::to_string(i));
  pg.Exec("CREATE ROLE app LOGIN");
  TempDir dir;
  const auto collectors = dir.Write("per_db.yaml", kPerDatabase);
  const auto config = dir.Write("pgtally.yaml", "connection:\n  max_connections: 4\n");
  PgtallyProcess pgtally(
      {"--config", config, "--no-collectors.builtin", "--collectors.path", collectors},
      {"DATA_SOURCE_NAME=" + pg.Dsn()});
  ASSERT_FALSE(pgtally.url().empty()) << pgtally.Stderr();

  std::vector<std::string> bodies;
  const auto [held, backends] = PeakConnections(pg, pgtally.process().pid(), [&] {
    for (int i = 0; i < 3; ++i) bodies.push_back(HttpGet(pgtally.url() + "/metrics").body);
  });
  std::printf(
      "connections held at most: %d (server backends at most: %d) for %d databases (budget 4, "
      "max_connections 20)\n",
      held, backends, kDatabases + 1);
  EXPECT_LE(held, 4);
  EXPECT_GE(held, 2);  // it did visit databases beside the DSN's own
  for (const auto& body : bodies) {
    EXPECT_EQ(SampleValue(body, "pg_up"), 1);
    EXPECT_EQ(SampleValue(body, "pgtally_collector_success{collector=\"per_db\"}"), 1) << body;
    EXPECT_EQ(LinesStartingWith(body, "per_db_v{").size(), kDatabases + 1u);
  }
  // Applications still get their connections: pgtally left the slots alone.
  std::vector<Conn> apps;
  for (int i = 0; i < 12; ++i) {
    EXPECT_NO_THROW(apps.push_back(Connect(pg.Dsn() + " user=app")));
  }
}

TEST(ConnectionBudget, ARefusalIsLoggedOnceAndNotRetriedInTheScrape) {
  PgServer pg(PgServer::Options{
      .pg_stat_statements = false,
      .extra_conf = {"max_connections = 6", "superuser_reserved_connections = 1"}});
  pg.Exec("CREATE ROLE monitor LOGIN IN ROLE pg_monitor; CREATE ROLE app LOGIN");
  pg.Exec("CREATE DATABASE refused_a");
  pg.Exec("CREATE DATABASE refused_b");
  const std::string base = "host=127.0.0.1 port=" + std::to_string(pg.port()) + " dbname=postgres";
  // The application takes every slot a non-superuser may have but one: pgtally's connection
  // to its own database gets that one, those to the other two databases are refused.
  std::vector<Conn> hogs;
  while (true) {
    try {
      hogs.push_back(Connect(base + " user=app"));
    } catch (const std::runtime_error&) {
      break;
    }
  }
  ASSERT_FALSE(hogs.empty());
  hogs.pop_back();
  TempDir dir;
  const auto collectors = dir.Write("per_db.yaml", kPerDatabase);
  PgtallyProcess pgtally({"--no-collectors.builtin", "--collectors.path", collectors},
                         {"DATA_SOURCE_NAME=" + base + " user=monitor"});
  ASSERT_FALSE(pgtally.url().empty()) << pgtally.Stderr();
  for (int i = 0; i < 4; ++i) {
    const auto body = HttpGet(pgtally.url() + "/metrics").body;
    EXPECT_EQ(SampleValue(body, "pg_up"), 1);
    EXPECT_EQ(SampleValue(body, "pgtally_collector_success{collector=\"server\"}"), 1);
  }
  // One line per cause. PostgreSQL words a refusal by what is left: "remaining connection slots
  // are reserved", or "too many clients" while a refused backend has not yet exited.
  const std::string log = pgtally.Stderr();
  std::vector<std::string> causes;
  for (auto at = log.find("cannot connect"); at != std::string::npos;
       at = log.find("cannot connect", at + 1)) {
    const auto error = log.find("error=", at);
    causes.push_back(log.substr(error, log.find('\n', error) - error));
  }
  std::printf("log lines about refused connections over 4 scrapes of 3 databases: %zu\n",
              causes.size());
  EXPECT_GE(causes.size(), 1u) << log;
  EXPECT_LE(causes.size(), 2u) << log;
  std::sort(causes.begin(), causes.end());
  EXPECT_EQ(std::adjacent_find(causes.begin(), causes.end()), causes.end()) << log;
  EXPECT_THAT(log, Not(HasSubstr("collector failed")));
}

// Prometheus' own scrapes, while another client asks for a tiny (or huge) timeout.
TEST(Deadlines, AHostileTimeoutHeaderCannotMakeOthersSeeTheDatabaseDown) {
  auto& pg = SharedPgServer();
  PgtallyProcess pgtally({}, {"DATA_SOURCE_NAME=" + pg.Dsn()});
  ASSERT_FALSE(pgtally.url().empty()) << pgtally.Stderr();
  const std::string url = pgtally.url() + "/metrics";
  std::atomic<bool> stop{false};
  std::atomic<int> hostile{0};
  std::atomic<double> slowest_hostile{0};
  std::thread attacker([&] {
    while (!stop) {
      const auto response = HttpGet(url, {"X-Prometheus-Scrape-Timeout-Seconds: 0.001"});
      slowest_hostile = std::max(slowest_hostile.load(), response.seconds);
      ++hostile;
      std::this_thread::sleep_for(300ms);
    }
  });
  int down = 0;
  for (int i = 0; i < 10; ++i) {
    const auto body = HttpGet(url, {"X-Prometheus-Scrape-Timeout-Seconds: 10"}).body;
    if (SampleValue(body, "pg_up") != 1) ++down;
    std::this_thread::sleep_for(400ms);
  }
  stop = true;
  attacker.join();
  std::printf("normal scrapes that saw pg_up 0 under %d hostile requests: %d of 10\n",
              hostile.load(), down);
  EXPECT_EQ(down, 0);
  EXPECT_GT(hostile.load(), 5);
  // The hostile requests' budget is raised to the floor (1 s), no further.
  EXPECT_LT(slowest_hostile.load(), 2.0);
}

TEST(Deadlines, ARequestNeverWaitsPastItsOwnBudget) {
  auto& pg = SharedPgServer();
  TempDir dir;
  const auto collectors = dir.Write("slow.yaml", R"yaml(version: 1
collectors:
  - {name: slow, help: S., timeout: 60s, query: SELECT 1 AS v FROM pg_sleep(6), values: [{column: v, type: gauge}]}
)yaml");
  PgtallyProcess pgtally({"--no-collectors.builtin", "--collectors.path", collectors},
                         {"DATA_SOURCE_NAME=" + pg.Dsn()});
  ASSERT_FALSE(pgtally.url().empty()) << pgtally.Stderr();
  const std::string url = pgtally.url() + "/metrics";
  auto patient = std::async(std::launch::async, [&] {
    return HttpGet(url, {"X-Prometheus-Scrape-Timeout-Seconds: 86400"});
  });
  std::this_thread::sleep_for(500ms);
  const auto hurried = HttpGet(url, {"X-Prometheus-Scrape-Timeout-Seconds: 3"});
  std::printf("a 3 s request joining a long scrape answered after %.2f s with %ld\n",
              hurried.seconds, hurried.status);
  EXPECT_LT(hurried.seconds, 3.0);
  EXPECT_EQ(hurried.status, 503);
  EXPECT_THAT(hurried.body, HasSubstr("did not finish within this request's budget"));
  // The scrape itself went on, for the request that could wait.
  const auto finished = patient.get();
  EXPECT_EQ(finished.status, 200);
  EXPECT_EQ(SampleValue(finished.body, "slow_v"), 1);
}

TEST(Harmless, SessionAdvisoryLocksAreReleasedAfterEachCollector) {
  auto& pg = SharedPgServer();
  pg::Connection conn(pg::ConnectOptions{pg.Dsn(), "", Millis(5000), nullptr});
  ASSERT_FALSE(conn.Connect(Clock::now() + 5s));
  const auto locks = [&] {
    return pg.QueryValue("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'");
  };
  auto outcome = conn.ExecReadOnly("SELECT pg_advisory_lock(4242) IS NULL AS v", {}, Millis(5000),
                                   Millis(1000), Clock::now() + 6s);
  ASSERT_TRUE(outcome.ok()) << outcome.error.message;
  const auto after_success = locks();
  // A statement that takes the lock, then fails: the server skips the rest of the pipeline.
  outcome = conn.ExecReadOnly(
      "SELECT CASE WHEN pg_advisory_lock(4243) IS NULL THEN 1 ELSE 1 / (random() * 0)::int END", {},
      Millis(5000), Millis(1000), Clock::now() + 6s);
  EXPECT_FALSE(outcome.ok());
  EXPECT_TRUE(conn.connected());
  const auto after_failure = locks();
  std::printf("advisory locks left behind: %s after a collector, %s after a failed one\n",
              after_success.c_str(), after_failure.c_str());
  EXPECT_EQ(after_success, "0");
  EXPECT_EQ(after_failure, "0");
}

TEST(Recovery, PgUpIsOneAsSoonAsTheServerAcceptsConnections) {
  PgServer pg(PgServer::Options{.pg_stat_statements = false});
  TargetOptions options;
  options.connect_timeout = Millis(1000);
  auto exporter = MakeExporter(pg.Dsn(), kPerDatabase, false, options);
  ASSERT_EQ(SampleValue(ScrapeBody(*exporter), "pg_up"), 1);
  pg.Stop();
  // Refused again and again: a backoff after each would now be several seconds long.
  for (int i = 0; i < 5; ++i) EXPECT_EQ(SampleValue(ScrapeBody(*exporter), "pg_up"), 0);
  pg.Start();
  const auto body = ScrapeBody(*exporter);
  EXPECT_EQ(SampleValue(body, "pg_up"), 1) << "the first scrape after the restart";
  // Connections kept from before the restart are replaced, not failed on.
  EXPECT_EQ(SampleValue(body, "pgtally_collector_success{collector=\"per_db\"}"), 1) << body;
  EXPECT_EQ(SampleValue(body, "pgtally_collector_success{collector=\"server\"}"), 1) << body;
}

TEST(Recovery, ARestartFailsNoCollector) {
  PgServer pg(PgServer::Options{.pg_stat_statements = false});
  pg.Exec("CREATE DATABASE restart_a");
  pg.Exec("CREATE DATABASE restart_b");
  auto exporter = MakeExporter(pg.Dsn(), kPerDatabase);
  ASSERT_EQ(SampleValue(ScrapeBody(*exporter), "pg_up"), 1);
  pg.Stop();
  pg.Start();
  const auto body = ScrapeBody(*exporter);
  EXPECT_EQ(SampleValue(body, "pg_up"), 1);
  EXPECT_EQ(SampleValue(body, "pgtally_collector_success{collector=\"per_db\"}"), 1) << body;
  EXPECT_EQ(LinesStartingWith(body, "per_db_v{").size(), 3u);
  EXPECT_EQ(SampleValue(
                body, "pgtally_collector_errors_total{class=\"connection\",collector=\"per_db\"}"),
            0);
}

std::string ReadyAfterAScrape(const PgServer& pg, const std::string& user) {
  PgtallyProcess pgtally({"--no-collectors.builtin"},
                         {"DATA_SOURCE_NAME=" + pg.Dsn() + " user=" + user});
  if (pgtally.url().empty()) return "did not start: " + pgtally.Stderr();
  HttpGet(pgtally.url() + "/metrics");
  return HttpGet(pgtally.url() + "/readyz").body;
}

TEST(Privileges, ReadyzNamesWhatTheRoleShouldNotHave) {
  auto& pg = SharedPgServer();
  pg.Exec(
      "DROP ROLE IF EXISTS priv_monitor, priv_broad; "
      "CREATE ROLE priv_monitor LOGIN IN ROLE pg_monitor; "
      "CREATE ROLE priv_broad LOGIN CREATEDB IN ROLE pg_monitor, pg_write_server_files");
  EXPECT_THAT(ReadyAfterAScrape(pg, "postgres"),
              HasSubstr("warning: role postgres is a superuser"));
  const auto broad = ReadyAfterAScrape(pg, "priv_broad");
  EXPECT_THAT(broad, HasSubstr("ALTER ROLE priv_broad NOCREATEDB"));
  EXPECT_THAT(broad, HasSubstr("REVOKE pg_write_server_files FROM priv_broad"));
  const auto monitor = ReadyAfterAScrape(pg, "priv_monitor");
  EXPECT_THAT(monitor, HasSubstr("database: reachable"));
  EXPECT_THAT(monitor, Not(HasSubstr("warning")));
}

}  // namespace
}  // namespace pgtally::testing
