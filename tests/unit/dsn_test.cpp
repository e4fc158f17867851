#include "pgtally/pg/dsn.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace pgtally::pg {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

TEST(Dsn, RedactsUriPassword) {
  EXPECT_EQ(RedactDsn("postgresql://app:s3cret@db.example:5432/shop?sslmode=require"),
            "postgresql://app:xxxxx@db.example:5432/shop?sslmode=require");
  EXPECT_EQ(RedactDsn("postgres://app:p%40ss@db/shop"), "postgres://app:xxxxx@db/shop");
  EXPECT_EQ(RedactDsn("postgresql://db/shop?user=app&password=s3cret&sslmode=disable"),
            "postgresql://db/shop?user=app&password=xxxxx&sslmode=disable");
  EXPECT_EQ(RedactDsn("postgresql://app@db/shop"), "postgresql://app@db/shop");
  EXPECT_EQ(RedactDsn("postgresql://db"), "postgresql://db");
}

TEST(Dsn, RedactsKeywordValuePassword) {
  EXPECT_EQ(RedactDsn("host=db user=app password=s3cret dbname=shop"),
            "host=db user=app password=xxxxx dbname=shop");
  EXPECT_EQ(RedactDsn("host=db password = 'it\\'s a secret' user=app"),
            "host=db password = xxxxx user=app");
  EXPECT_EQ(RedactDsn("host=db user=app"), "host=db user=app");
}

TEST(Dsn, InvalidStringsAreNotShown) {
  EXPECT_EQ(RedactDsn("host=db password='unterminated"), "<invalid connection string>");
  const auto error = DsnError("host=db password=hunter2 nonsense");
  ASSERT_TRUE(error.has_value());
  EXPECT_THAT(*error, Not(HasSubstr("hunter2")));
  EXPECT_THAT(*error, Not(HasSubstr("nonsense")));
  EXPECT_THAT(DsnError("host=db bogus_option=1").value_or(""), HasSubstr("xxxxx"));
  EXPECT_FALSE(DsnError("postgresql://app:pw@db/shop").has_value());
}

TEST(Dsn, FindsThePassword) {
  EXPECT_EQ(DsnPassword("postgresql://app:p%40ss@db/shop"), "p@ss");
  EXPECT_EQ(DsnPassword("host=db password='a b'"), "a b");
  EXPECT_FALSE(DsnPassword("host=db").has_value());
}

}  // namespace
}  // namespace pgtally::pg
