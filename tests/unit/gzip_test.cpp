#include "pgtally/http/gzip.h"

#include <gtest/gtest.h>
#include <zlib.h>

#include <cstdint>
#include <string>
#include <vector>

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

// A scrape's exposition comes in parts (a header, then a family's samples, ...): compressed as
// one stream, whatever their sizes, including empty ones and ones larger than the output step.
TEST(Gzip, PartsCompressAsTheirConcatenation) {
  std::string noise;
  std::uint32_t state = 12345;
  for (int i = 0; i < 300'000; ++i) {
    state = state * 1103515245 + 12345;
    noise.push_back(static_cast<char>(state >> 24));  // barely compressible: output > 64 KiB
  }
  const std::vector<std::string> parts = {"# TYPE a gauge\n", "", "a 1\n", noise, "", "b 2\n"};
  const auto compressed = Gzip(parts);
  ASSERT_TRUE(compressed);
  EXPECT_GT(compressed->size(), 64u * 1024);
  EXPECT_EQ(Gunzip(*compressed), parts[0] + parts[2] + noise + parts[5]);
  const auto empty = Gzip(std::vector<std::string>{});
  ASSERT_TRUE(empty);
  EXPECT_EQ(Gunzip(*empty), "");
}

}  // namespace
}  // namespace pgtally
