// Properties every built-in collector must keep, checked without a server: version variants
// cover every PostgreSQL version the collector claims, and the library stays as broad as the
// issue promises.

#include <gtest/gtest.h>

#include <set>

#include "pgtally/config/collector_loader.h"

namespace pgtally {
namespace {

const std::vector<CollectorSpec>& Builtin() {
  static const auto loaded = LoadCollectors({PGTALLY_SOURCE_DIR "/queries"});
  return loaded.collectors;
}

TEST(BuiltinLibrary, Loads) {
  const auto loaded = LoadCollectors({PGTALLY_SOURCE_DIR "/queries"});
  for (const auto& error : loaded.errors) ADD_FAILURE() << error.ToString();
}

// A collector that claims a version (through its own min/max_version) must have a query for it:
// a gap between variants would silently export nothing on that version.
TEST(BuiltinLibrary, VariantsCoverEveryClaimedVersion) {
  for (const auto& spec : Builtin()) {
    if (spec.target_type != TargetType::kPostgres) continue;
    for (int major = 12; major <= 19; ++major) {
      for (const int minor : {0, 5, 99}) {
        const int version = major * 10000 + minor;
        if (!spec.versions.Contains(version)) continue;
        EXPECT_NE(spec.QueryFor(version), nullptr)
            << spec.name << " (" << spec.location.ToString() << ") has no query for " << version;
      }
    }
  }
}

TEST(BuiltinLibrary, SupportsPostgres14To19) {
  // Every collector that runs on 15 must also run on 14 through 19 unless it says otherwise
  // with a version bound (views added or removed in a release).
  for (const auto& spec : Builtin()) {
    if (spec.target_type != TargetType::kPostgres || !spec.QueryFor(150000)) continue;
    if (spec.versions.min || spec.versions.max) continue;
    for (int major = 14; major <= 19; ++major) {
      EXPECT_NE(spec.QueryFor(major * 10000), nullptr)
          << spec.name << " runs on 15 but not on " << major;
    }
  }
}

TEST(BuiltinLibrary, AtLeast300MetricNamesOnPostgres15) {
  std::set<std::string> names;
  for (const auto& spec : Builtin()) {
    if (spec.target_type != TargetType::kPostgres || !spec.QueryFor(150000)) continue;
    for (const auto& value : spec.values) names.insert(value.metric_name);
  }
  EXPECT_GE(names.size(), 300u);
}

}  // namespace
}  // namespace pgtally
