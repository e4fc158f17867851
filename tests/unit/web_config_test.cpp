#include "pgtally/config/web_config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "pgtally/http/basic_auth.h"

namespace pgtally {
namespace {

using ::testing::HasSubstr;

constexpr const char* kHash = "$2y$10$earowbtQjbpy8IP46MY9LOEAq9RD/uHLuQhhYByezaoDMYo0KpzH.";

TEST(WebConfig, ReadsTheExporterToolkitShape) {
  WebConfig config;
  const auto errors = ParseWebConfig(
      "tls_server_config:\n  cert_file: tls/server.crt\n  key_file: /keys/server.key\n"
      "  client_ca_file: ca.crt\n  client_auth_type: VerifyClientCertIfGiven\n"
      "  min_version: TLS13\nbasic_auth_users:\n  prometheus: " +
          std::string(kHash) + "\n",
      "/etc/pgtally/web.yml", config);
  ASSERT_TRUE(errors.empty()) << errors.front().ToString();
  ASSERT_TRUE(config.tls);
  EXPECT_EQ(config.tls->cert_file, "/etc/pgtally/tls/server.crt");
  EXPECT_EQ(config.tls->key_file, "/keys/server.key");
  EXPECT_EQ(config.tls->client_ca_file, "/etc/pgtally/ca.crt");
  EXPECT_EQ(config.tls->client_auth, ClientAuth::kVerifyIfGiven);
  EXPECT_EQ(config.tls->min_version, "TLS13");
  EXPECT_EQ(config.basic_auth_users.at("prometheus"), kHash);
}

TEST(WebConfig, RejectsWhatItCannotHonour) {
  WebConfig config;
  const auto errors = ParseWebConfig(
      "tls_server_config:\n  cert_file: a\n  client_auth_type: Sometimes\n  min_version: SSL3\n"
      "http_server_config: {http2: true}\nbasic_auth_users:\n  bob: plain-text\n  'a:b': " +
          std::string(kHash) + "\n",
      "web.yml", config);
  std::string all;
  for (const auto& error : errors) all += error.ToString() + "\n";
  EXPECT_THAT(all, HasSubstr("web.yml:5:1: "));  // http_server_config: not implemented
  EXPECT_THAT(all, HasSubstr("key_file"));
  EXPECT_THAT(all, HasSubstr("client_auth_type \"Sometimes\""));
  EXPECT_THAT(all, HasSubstr("min_version must be"));
  EXPECT_THAT(all, HasSubstr("web.yml:7:"));
  EXPECT_THAT(all, HasSubstr("must be a bcrypt hash"));
  EXPECT_THAT(all, ::testing::Not(HasSubstr("plain-text")));
  EXPECT_THAT(all, HasSubstr("may not contain ':'"));
}

TEST(BasicAuth, ChecksBcryptAndHeaderShape) {
  BasicAuth auth(std::map<std::string, std::string>{{"prometheus", kHash}});
  // "prometheus:scrape-Secret-7"
  EXPECT_TRUE(auth.Check("Basic cHJvbWV0aGV1czpzY3JhcGUtU2VjcmV0LTc="));
  EXPECT_TRUE(auth.Check("Basic cHJvbWV0aGV1czpzY3JhcGUtU2VjcmV0LTc="));   // remembered
  EXPECT_FALSE(auth.Check("Basic cHJvbWV0aGV1czpzY3JhcGUtU2VjcmV0LTg="));  // ...-8
  EXPECT_FALSE(auth.Check(nullptr));
  EXPECT_FALSE(auth.Check(""));
  EXPECT_FALSE(auth.Check("Bearer cHJvbWV0aGV1czpzY3JhcGUtU2VjcmV0LTc="));
  EXPECT_FALSE(auth.Check("Basic !!!!"));
  EXPECT_FALSE(auth.Check("Basic cHJvbWV0aGV1cw=="));                  // "prometheus", no colon
  EXPECT_FALSE(auth.Check("Basic bm9ib2R5OnNjcmFwZS1TZWNyZXQtNw=="));  // nobody:scrape-Secret-7
}

TEST(BasicAuth, Base64) {
  std::string out;
  EXPECT_TRUE(DecodeBase64("YWJj", out));
  EXPECT_EQ(out, "abc");
  EXPECT_TRUE(DecodeBase64("YWI=", out));
  EXPECT_EQ(out, "ab");
  EXPECT_FALSE(DecodeBase64("YWI", out));
  EXPECT_FALSE(DecodeBase64("Y=Jj", out));
  EXPECT_FALSE(DecodeBase64("YW\nJ", out));
}

}  // namespace
}  // namespace pgtally
