#include "pgtally/log/logging.h"

#include <gtest/gtest.h>

namespace pgtally {
namespace {

TEST(Logging, Logfmt) {
  EXPECT_EQ(
      FormatLogLine("T", "warn",
                    "collector failed: collector=x error=\"relation \\\"t\\\" does not exist\"",
                    LogFormat::kLogfmt),
      "ts=T level=warn msg=\"collector failed\" collector=x error=\"relation \\\"t\\\" does not "
      "exist\"");
  EXPECT_EQ(FormatLogLine("T", "info", "plain message: not fields", LogFormat::kLogfmt),
            "ts=T level=info msg=\"plain message: not fields\"");
}

TEST(Logging, Json) {
  EXPECT_EQ(
      FormatLogLine("T", "warn", "collector failed: collector=x error=" + Quoted("a \"b\"\nc"),
                    LogFormat::kJson),
      "{\"ts\":\"T\",\"level\":\"warn\",\"msg\":\"collector "
      "failed\",\"collector\":\"x\",\"error\":\"a \\\"b\\\"\\nc\"}");
}

TEST(Logging, SecretsAreScrubbed) {
  AddSecret("hunter2");
  EXPECT_EQ(ScrubSecrets("password hunter2 and hunter2hunter2"), "password xxxxx and xxxxxxxxxx");
}

}  // namespace
}  // namespace pgtally
