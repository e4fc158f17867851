#include <gtest/gtest.h>

#include "pgtally/collect/probe_pool.h"
#include "pgtally/pg/dsn.h"

namespace pgtally {
namespace {

ProbeAddress Parsed(std::string_view text) {
  std::string error;
  const auto address = ParseProbeAddress(text, error);
  EXPECT_TRUE(address) << text << ": " << error;
  return address.value_or(ProbeAddress{});
}

std::string Refused(std::string_view text) {
  std::string error;
  EXPECT_FALSE(ParseProbeAddress(text, error)) << text;
  return error;
}

TEST(ProbeAddress, ReadsHostPortAndDatabase) {
  const auto plain = Parsed("db1.internal");
  EXPECT_EQ(plain.host, "db1.internal");
  EXPECT_EQ(plain.port, 5432);
  EXPECT_EQ(plain.dbname, "");
  EXPECT_EQ(plain.HostPort(), "db1.internal:5432");

  const auto full = Parsed("10.0.0.7:6543/app");
  EXPECT_EQ(full.host, "10.0.0.7");
  EXPECT_EQ(full.port, 6543);
  EXPECT_EQ(full.dbname, "app");

  const auto uri = Parsed("postgresql://db1:5433/");
  EXPECT_EQ(uri.host, "db1");
  EXPECT_EQ(uri.port, 5433);
  EXPECT_EQ(uri.dbname, "");
  EXPECT_EQ(Parsed("postgres://db1").host, "db1");

  const auto v6 = Parsed("[::1]:5440/x");
  EXPECT_EQ(v6.host, "::1");
  EXPECT_EQ(v6.port, 5440);
  EXPECT_EQ(v6.HostPort(), "[::1]:5440");
}

TEST(ProbeAddress, RefusesCredentialsParametersAndNonsense) {
  EXPECT_EQ(Refused("postgresql://u:secret@db1/app"),
            "the target may not carry a user or password; name an auth_module instead");
  EXPECT_EQ(Refused("db1/app?sslmode=disable"),
            "the target may not carry connection parameters; set them in the auth module");
  EXPECT_EQ(Refused("db1:0"), "\"0\" is not a port number");
  EXPECT_EQ(Refused("db1:54x"), "\"54x\" is not a port number");
  EXPECT_EQ(Refused(""), "\"\" is not a host name or IP address");
  EXPECT_EQ(Refused("db 1"), "\"db 1\" is not a host name or IP address");
  // A key=value connection string is not a target either: it could smuggle in any keyword.
  EXPECT_EQ(Refused("host=db1 sslmode=disable"),
            "\"host=db1 sslmode=disable\" is not a host name or IP address");
  EXPECT_EQ(Refused("::1"), "\"\" is not a host name or IP address");
  EXPECT_EQ(Refused("[::1"), "unterminated [ in the target's host");
  EXPECT_EQ(Refused("db1/a/b"), "expected host[:port][/dbname]");
}

TEST(ProbeAddress, ConnectionStringQuotesEveryValue) {
  AuthModule module;
  module.username = "mon itor";
  module.password = "it's\\secret";
  module.options = {{"sslmode", "require"}, {"dbname", "metrics"}};
  const auto dsn = ProbeDsn(Parsed("db1:5433"), module);
  EXPECT_EQ(dsn,
            "host='db1' port=5433 dbname='metrics' user='mon itor' password='it\\'s\\\\secret' "
            "sslmode='require'");
  EXPECT_EQ(pg::DsnError(dsn), std::nullopt);
  EXPECT_EQ(pg::DsnPassword(dsn), "it's\\secret");
  // The target's database wins over the module's; without either it is postgres.
  EXPECT_EQ(pg::DsnValue(ProbeDsn(Parsed("db1/app"), module), "dbname"), "app");
  EXPECT_EQ(pg::DsnValue(ProbeDsn(Parsed("db1"), AuthModule{}), "dbname"), "postgres");
}

// What allowed_targets matches: the server and the database the probe would connect to, so a
// pattern for a server no longer admits every database name a client makes up.
TEST(ProbeAddress, TargetNameIncludesTheDatabase) {
  AuthModule module;
  EXPECT_EQ(ProbeTargetName(Parsed("db1"), module), "db1:5432/postgres");
  EXPECT_EQ(ProbeTargetName(Parsed("postgresql://[::1]:5440/app"), module), "[::1]:5440/app");
  module.options = {{"dbname", "metrics"}};
  EXPECT_EQ(ProbeTargetName(Parsed("db1:5433"), module), "db1:5433/metrics");
  EXPECT_EQ(ProbeTargetName(Parsed("db1:5433/app"), module), "db1:5433/app");
}

}  // namespace
}  // namespace pgtally
