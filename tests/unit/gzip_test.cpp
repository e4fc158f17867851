#include "pgtally/http/gzip.h"

#include <gtest/gtest.h>
#include <zlib.h>

#include <string>

namespace pgtally {
namespace {

// What a client does with the body: gunzip it.
std::string Gunzip(const std::string& data) {
  z_stream stream{};
  EXPECT_EQ(inflateInit2(&stream, 15 + 16), Z_OK);
  std::string out(1 << 20, '\0');
  stream.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  stream.avail_in = static_cast<uInt>(data.size());
  stream.next_out = reinterpret_cast<Bytef*>(out.data());
  stream.avail_out = static_cast<uInt>(out.size());
  EXPECT_EQ(inflate(&stream, Z_FINISH), Z_STREAM_END);
  out.resize(stream.total_out);
  inflateEnd(&stream);
  return out;
}

TEST(Gzip, AcceptEncoding) {
  EXPECT_TRUE(AcceptsGzip("gzip"));  // what Prometheus sends
  EXPECT_TRUE(AcceptsGzip("deflate, GZIP;q=0.5"));
  EXPECT_TRUE(AcceptsGzip("br, *"));
  EXPECT_TRUE(AcceptsGzip(" gzip ; q=1.0 , identity"));
  EXPECT_FALSE(AcceptsGzip(nullptr));
  EXPECT_FALSE(AcceptsGzip(""));
  EXPECT_FALSE(AcceptsGzip("identity"));
  EXPECT_FALSE(AcceptsGzip("gzip;q=0"));
  EXPECT_FALSE(AcceptsGzip("gzip;q=0.000"));
  EXPECT_FALSE(AcceptsGzip("gzip;q=abc"));  // malformed: not accepted
  EXPECT_FALSE(AcceptsGzip("x-gzip2"));
}

TEST(Gzip, RoundTripsAndShrinksAnExposition) {
  std::string exposition = "# HELP pg_x Test.\n# TYPE pg_x gauge\n";
  for (int i = 0; i < 5000; ++i) {
    exposition += "pg_x{datname=\"app\",relname=\"table_" + std::to_string(i) + "\"} " +
                  std::to_string(i * 7) + "\n";
  }
  const auto compressed = Gzip(exposition);
  ASSERT_TRUE(compressed.has_value());
  EXPECT_EQ(Gunzip(*compressed), exposition);
  EXPECT_LT(compressed->size() * 5, exposition.size());
  ASSERT_TRUE(Gzip("").has_value());
  EXPECT_EQ(Gunzip(*Gzip("")), "");
}

}  // namespace
}  // namespace pgtally
