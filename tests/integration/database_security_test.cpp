// How pgtally meets its database: TLS as the DSN's sslmode says, and passwords from libpq's own
// password file. (Least privilege and the read-only guarantee are in kubernetes_test and
// scrape_test; the password file of our own in lifecycle_test.)

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <csignal>
#include <filesystem>

#include "http_client.h"
#include "pg_server.h"
#include "process.h"
#include "temp_dir.h"
#include "test_exporter.h"

namespace pgtally::testing {
namespace {

using ::testing::HasSubstr;
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

}  // namespace
}  // namespace pgtally::testing
