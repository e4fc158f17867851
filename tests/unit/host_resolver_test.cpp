// Issue 16: libpq looks host names up inside PQconnectPoll, synchronously, so a slow DNS server
// held a /probe with a 3 s budget for 10 s. The names are now looked up by HostResolver within the
// connection's deadline; these tests give it a fake lookup (one that hangs, one that counts).

#include "pgtally/pg/host_resolver.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "pgtally/pg/connection.h"

namespace pgtally::pg {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Pair;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// Resolves from a table; names not in it hang for `hang`. Counts the lookups.
struct FakeDns {
  std::map<std::string, std::vector<std::string>> names;
  std::chrono::milliseconds hang{0};
  std::shared_ptr<std::atomic<int>> lookups = std::make_shared<std::atomic<int>>(0);

  ResolveFunction Function() const {
    return [names = names, hang = hang, lookups = lookups](const std::string& host,
                                                           std::string& error) {
      ++*lookups;
      if (const auto it = names.find(host); it != names.end()) return it->second;
      std::this_thread::sleep_for(hang);
      error = "no such host " + host;
      return std::vector<std::string>{};
    };
  }
};

TEST(HostResolver, AHangingLookupEndsAtTheDeadline) {
  FakeDns dns;
  dns.hang = 3s;
  HostResolver resolver(dns.Function(), 4);
  const auto started = Clock::now();
  const auto resolved = resolver.Resolve("host=slow.example port=5432", Clock::now() + 200ms);
  const auto took = Clock::now() - started;
  EXPECT_LT(took, 700ms);  // not the lookup's 3 s
  ASSERT_TRUE(resolved.error);
  EXPECT_THAT(*resolved.error, HasSubstr("timed out resolving host name \"slow.example\""));
}

TEST(HostResolver, HungLookupsAreBoundedAndFurtherOnesRefusedAtOnce) {
  FakeDns dns;
  dns.hang = 2s;
  HostResolver resolver(dns.Function(), 2);
  for (int i = 0; i < 2; ++i) {
    EXPECT_TRUE(resolver.Resolve("host=slow.example", Clock::now() + 50ms).error);
  }
  const auto started = Clock::now();
  const auto refused = resolver.Resolve("host=slow.example", Clock::now() + 1s);
  EXPECT_LT(Clock::now() - started, 100ms);
  ASSERT_TRUE(refused.error);
  EXPECT_THAT(*refused.error, HasSubstr("2 earlier lookups have not ended"));
  EXPECT_EQ(*dns.lookups, 2);
}

TEST(HostResolver, NamesGetTheirAddressesBesideTheName) {
  FakeDns dns;
  dns.names = {{"db.internal", {"10.0.0.7", "10.0.0.8"}}, {"other", {"::1"}}};
  HostResolver resolver(dns.Function(), 4);
  const auto resolved =
      resolver.Resolve("host=db.internal,other port=5433,5434 dbname=app", Clock::now() + 1s);
  ASSERT_FALSE(resolved.error);
  // Each address becomes a host entry of its own, in order, each with its host's port; the name
  // stays for TLS verification and .pgpass.
  EXPECT_THAT(resolved.parameters, ElementsAre(Pair("host", "db.internal,db.internal,other"),
                                               Pair("hostaddr", "10.0.0.7,10.0.0.8,::1"),
                                               Pair("port", "5433,5433,5434")));
}

TEST(HostResolver, UrisAreReadToo) {
  FakeDns dns;
  dns.names = {{"db.internal", {"10.0.0.7"}}};
  HostResolver resolver(dns.Function(), 4);
  const auto resolved =
      resolver.Resolve("postgresql://monitor@db.internal:6432/app", Clock::now() + 1s);
  EXPECT_THAT(resolved.parameters, ElementsAre(Pair("host", "db.internal"),
                                               Pair("hostaddr", "10.0.0.7"), Pair("port", "6432")));
}

TEST(HostResolver, LiteralsSocketsAndGivenAddressesAreNotLookedUp) {
  FakeDns dns;
  dns.hang = 5s;
  HostResolver resolver(dns.Function(), 4);
  for (const char* conninfo : {"host=127.0.0.1", "host=::1 port=5432", "host=/var/run/postgresql",
                               "host=db.internal hostaddr=10.0.0.7", "dbname=postgres", "postgres",
                               "postgresql:///app?host=/tmp", "service=metrics"}) {
    const auto resolved = resolver.Resolve(conninfo, Clock::now() + 1s);
    EXPECT_FALSE(resolved.error) << conninfo;
    EXPECT_TRUE(resolved.parameters.empty()) << conninfo;
  }
  EXPECT_EQ(*dns.lookups, 0);
}

TEST(HostResolver, AHostThatDoesNotResolveIsLeftOutOfSeveral) {
  FakeDns dns;
  dns.names = {{"good", {"10.0.0.9"}}};
  HostResolver resolver(dns.Function(), 4);
  const auto resolved = resolver.Resolve("host=bad,/tmp,good port=1,2,3", Clock::now() + 1s);
  ASSERT_FALSE(resolved.error);
  EXPECT_THAT(resolved.parameters, ElementsAre(Pair("host", "/tmp,good"),
                                               Pair("hostaddr", ",10.0.0.9"), Pair("port", "2,3")));
  const auto none = resolver.Resolve("host=bad", Clock::now() + 1s);
  ASSERT_TRUE(none.error);
  EXPECT_THAT(*none.error, HasSubstr("no such host bad"));
}

// Connection::Connect uses the resolver and its deadline: before, libpq's own lookup had none.
TEST(HostResolver, ConnectEndsAtItsDeadlineWhileTheNameHangs) {
  FakeDns dns;
  dns.hang = 3s;
  HostResolver resolver(dns.Function(), 4);
  ConnectOptions options{"host=slow.example port=5432 user=x dbname=x", "", Millis(5000), nullptr};
  options.resolver = &resolver;
  Connection connection(options);
  const auto started = Clock::now();
  const auto error = connection.Connect(Clock::now() + 300ms);
  EXPECT_LT(Clock::now() - started, 800ms);
  ASSERT_TRUE(error);
  EXPECT_THAT(error->message, HasSubstr("timed out resolving host name \"slow.example\""));
  EXPECT_FALSE(connection.connected());
}

TEST(HostResolver, TheSystemResolverFindsLocalhost) {
  const auto resolved =
      HostResolver::System().Resolve("host=localhost port=5432", Clock::now() + 5s);
  ASSERT_FALSE(resolved.error) << *resolved.error;
  ASSERT_EQ(resolved.parameters.size(), 3u);
  EXPECT_THAT(resolved.parameters[1].second,
              ::testing::AnyOf(HasSubstr("127.0.0.1"), HasSubstr("::1")));
}

}  // namespace
}  // namespace pgtally::pg
