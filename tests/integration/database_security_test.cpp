// How pgtally meets its database: TLS as the DSN's sslmode says, passwords from libpq's own
// password file, and collectors that cannot harm it: what a read-only transaction does not stop
// is refused at load and by `pgtally check` (docs/security.md). (Least privilege and the
// read-only transaction are in kubernetes_test and scrape_test; the password file of our own in
// lifecycle_test.)

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <csignal>
#include <filesystem>

#include "http_client.h"
#include "pg_server.h"
#include "pgtally/config/collector_loader.h"
#include "process.h"
#include "temp_dir.h"
#include "test_exporter.h"

namespace pgtally::testing {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;
using namespace std::chrono_literals;

const std::string kBinary = PGTALLY_BINARY;
constexpr const char* kCollector =
    "version: 1\ncollectors:\n  - {name: ssl_in_use, help: S., query: \"SELECT ssl::int AS v "
    "FROM pg_stat_ssl WHERE pid = pg_backend_pid()\", values: [{column: v, type: gauge}]}\n";

// Makes `file` the server's own (it refuses a key file others can read).
void GiveToServer(const std::string& file) {
  chmod(file.c_str(), 0600);
  if (geteuid() != 0) return;
  if (const passwd* postgres = getpwnam("postgres")) {
    ASSERT_EQ(chown(file.c_str(), postgres->pw_uid, postgres->pw_gid), 0);
  }
}

TEST(DatabaseSecurity, SslModeFromTheDsnIsHonoured) {
  PgServer pg(PgServer::Options{.pg_stat_statements = false});
  const auto key = pg.dir() + "/server.key";
  const auto cert = pg.dir() + "/server.crt";
  Process openssl({"openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                   "-subj", "/CN=127.0.0.1", "-keyout", key, "-out", cert});
  ASSERT_EQ(openssl.Wait(60s), 0) << openssl.Stderr();
  GiveToServer(key);
  GiveToServer(cert);

  // Before the server has TLS, sslmode=require refuses to connect in the clear.
  auto refused = MakeExporter(pg.Dsn() + " sslmode=require", kCollector);
  EXPECT_EQ(SampleValue(ScrapeBody(*refused), "pg_up"), 0);

  // One statement at a time: ALTER SYSTEM refuses to run in the implicit transaction of a
  // multi-statement string.
  pg.Exec("ALTER SYSTEM SET ssl_cert_file = '" + cert + "'");
  pg.Exec("ALTER SYSTEM SET ssl_key_file = '" + key + "'");
  pg.Exec("ALTER SYSTEM SET ssl = on");
  pg.Exec("SELECT pg_reload_conf()");
  ASSERT_TRUE(Eventually([&] { return pg.QueryValue("SHOW ssl") == "on"; }, 10s));
  auto required = MakeExporter(pg.Dsn() + " sslmode=require", kCollector);
  const auto body = ScrapeBody(*required);
  EXPECT_EQ(SampleValue(body, "pg_up"), 1);
  EXPECT_EQ(SampleValue(body, "ssl_in_use_v"), 1);
  // And sslmode=disable stays in the clear.
  auto clear = MakeExporter(pg.Dsn() + " sslmode=disable", kCollector);
  EXPECT_EQ(SampleValue(ScrapeBody(*clear), "ssl_in_use_v"), 0);
}

TEST(DatabaseSecurity, LibpqPasswordFileIsUsed) {
  constexpr const char* kPassword = "pgpass-Secret-5";
  PgServer pg(PgServer::Options{.pg_stat_statements = false,
                                .hba_first = {"host all monitor 127.0.0.1/32 scram-sha-256"}});
  pg.Exec(std::string("CREATE ROLE monitor LOGIN IN ROLE pg_monitor PASSWORD '") + kPassword + "'");
  TempDir dir;
  const auto pgpass = dir.Write(
      "pgpass", "127.0.0.1:" + std::to_string(pg.port()) + ":*:monitor:" + kPassword + "\n");
  chmod(pgpass.c_str(), 0600);  // libpq ignores a password file others can read
  const std::string dsn =
      "host=127.0.0.1 port=" + std::to_string(pg.port()) + " dbname=postgres user=monitor";
  Process process({kBinary, "--web.listen-address=127.0.0.1:0", "--no-collectors.builtin",
                   "--collectors.path", dir.Write("c.yaml", kCollector)},
                  {"DATA_SOURCE_NAME=" + dsn, "PGPASSFILE=" + pgpass});
  const auto url = PgtallyUrl(process);
  ASSERT_FALSE(url.empty()) << process.Stderr();
  EXPECT_EQ(SampleValue(HttpGet(url + "/metrics").body, "pg_up"), 1) << process.Stderr();
  process.Signal(SIGTERM);
  EXPECT_EQ(process.Wait(10s), 0);
  EXPECT_THAT(process.Stderr(), ::testing::Not(HasSubstr(kPassword)));
}

// Issue 16's reproductions: each had an effect that outlives the scrape or reaches past the
// read-only transaction, even when the query returns no rows and fails as a mapping error.
struct Harm {
  std::string collector;
  std::string query;
  std::string denied;  // what allow_unsafe must name
};

const std::vector<Harm>& Reproductions() {
  static const std::vector<Harm> kHarms = {
      {"session_lock", "SELECT 1 AS v FROM pg_advisory_lock(4711) WHERE false", "pg_advisory_lock"},
      {"terminate",
       "SELECT pg_terminate_backend(pid)::int AS v FROM pg_stat_activity WHERE "
       "application_name = 'victim'",
       "pg_terminate_backend"},
      {"remote_write",
       "SELECT 1 AS v FROM dblink_exec('dbname=postgres', 'CREATE TABLE harmed (id int)')",
       "dblink_exec"},
      {"copy_program", "COPY (SELECT 1) TO PROGRAM 'touch /tmp/pgtally-harmed'", "COPY"},
      {"copy_file", "COPY (SELECT 1) TO '/tmp/pgtally-harmed'", "COPY"},
      {"statements_reset", "SELECT 1 AS v FROM pg_stat_statements_reset()",
       "pg_stat_statements_reset"},
      {"checkpoint", "CHECKPOINT", "CHECKPOINT"},
      {"switch_wal", "SELECT pg_switch_wal()::text AS v", "pg_switch_wal"},
      {"reload", "SELECT pg_reload_conf()::int AS v", "pg_reload_conf"},
      {"exclusive_lock", "DO $$BEGIN LOCK TABLE precious IN ACCESS EXCLUSIVE MODE; END$$", "DO"},
  };
  return kHarms;
}

std::string HarmFile(const Harm& harm, bool allowed) {
  std::string yaml = "version: 1\ncollectors:\n  - name: " + harm.collector +
                     "\n    help: H.\n    query: |\n      " + harm.query +
                     "\n    values: [{column: v, type: gauge}]\n";
  if (allowed) yaml += "    allow_unsafe: [" + harm.denied + "]\n";
  return yaml;
}

TEST(DatabaseSecurity, WhatCannotBeMonitoringIsRefusedAtLoadAndByCheck) {
  PgServer pg(PgServer::Options{});
  pg.Exec("CREATE EXTENSION IF NOT EXISTS dblink");
  pg.Exec("CREATE TABLE precious (id int)");
  TempDir dir;
  for (const auto& harm : Reproductions()) {
    SCOPED_TRACE(harm.collector);
    const auto file = dir.Write(harm.collector + ".yaml", HarmFile(harm, false));
    // The place is the call's (or the statement's) own: line 6, where the query's text starts.
    const std::string place = file + ":6:";
    const auto loaded = LoadCollectors({file});
    ASSERT_EQ(loaded.errors.size(), 1u);
    EXPECT_THAT(loaded.errors[0].ToString(),
                AllOf(::testing::StartsWith(place), HasSubstr("which is not monitoring"),
                      HasSubstr("allow_unsafe: [" + harm.denied + "]")));

    Process check(
        {kBinary, "check", "--no-collectors.builtin", "--collectors.path", file, "--dsn", pg.Dsn()},
        {"DATA_SOURCE_NAME="});
    EXPECT_NE(check.Wait(60s), 0);
    EXPECT_THAT(check.Stdout() + check.Stderr(),
                AllOf(HasSubstr(place), HasSubstr("allow_unsafe: [" + harm.denied + "]")));

    // Named under allow_unsafe, the collector loads: the risk is then the author's.
    const auto allowed = dir.Write(harm.collector + "_allowed.yaml", HarmFile(harm, true));
    const auto reloaded = LoadCollectors({allowed});
    EXPECT_TRUE(reloaded.ok()) << reloaded.errors.front().ToString();
    Process allowed_check({kBinary, "check", "--no-collectors.builtin", "--collectors.path",
                           allowed, "--dsn", pg.Dsn()},
                          {"DATA_SOURCE_NAME="});
    allowed_check.Wait(60s);
    EXPECT_THAT(allowed_check.Stdout() + allowed_check.Stderr(),
                Not(HasSubstr("which is not monitoring")));
  }
  // Nothing ran: no lock is held, nothing was written.
  EXPECT_EQ(pg.QueryValue("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"), "0");
  EXPECT_EQ(pg.QueryValue("SELECT to_regclass('harmed') IS NULL"), "t");
}

// postgres_exporter's files have no allow_unsafe: the same reproductions are refused there too.
TEST(DatabaseSecurity, ImportedFilesAreRefusedToo) {
  TempDir dir;
  const auto file =
      dir.Write("queries.yaml",
                "pg_locked:\n  query: \"SELECT 1 AS v FROM pg_advisory_lock(4711) WHERE false\"\n"
                "  metrics:\n    - v: {usage: GAUGE, description: V.}\n");
  Process check({kBinary, "check", "--no-collectors.builtin", "--extend.query-path", file},
                {"DATA_SOURCE_NAME="});
  EXPECT_NE(check.Wait(60s), 0);
  EXPECT_THAT(check.Stdout() + check.Stderr(),
              AllOf(HasSubstr(file + ":2:30:"), HasSubstr("pg_advisory_lock()"),
                    HasSubstr("write it in pgtally's format")));
}

}  // namespace
}  // namespace pgtally::testing
