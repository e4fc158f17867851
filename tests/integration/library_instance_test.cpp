// The built-in instance, database, settings and replication collectors (queries/server.yaml,
// database.yaml, instance.yaml, replication.yaml) against real servers: each condition is
// created and the metric must move; replication is checked on both sides of a real streaming
// standby. The version variants are checked without a server for 12 through 19.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>

#include "http_client.h"
#include "pg_server.h"
#include "pgtally/config/collector_loader.h"
#include "promtool.h"
#include "test_exporter.h"

namespace pgtally::testing {
namespace {

using ::testing::EndsWith;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::SizeIs;

// Scrapes until `done(body)` holds (statistics reach the views asynchronously), at most ~10 s;
// returns the last body either way so the caller's expectations report what was seen.
std::string ScrapeUntil(Exporter& exporter, const std::function<bool(const std::string&)>& done) {
  std::string body;
  for (int i = 0; i < 100; ++i) {
    body = ScrapeBody(exporter);
    if (done(body)) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return body;
}

double ValueOr0(const std::string& body, const std::string& series) {
  const double value = SampleValue(body, series);
  return std::isnan(value) ? 0 : value;
}

// Every collector that ran succeeded.
void ExpectNoFailedCollector(const std::string& body) {
  const auto success = LinesStartingWith(body, "pgtally_collector_success{");
  EXPECT_THAT(success, Not(IsEmpty()));
  for (const auto& line : success) EXPECT_THAT(line, EndsWith(" 1"));
}

class InstanceLibraryTest : public ::testing::Test {
 protected:
  PgServer& pg_ = SharedPgServer();
  std::unique_ptr<Exporter> exporter_ = MakeExporter(pg_.Dsn(), "", /*builtin=*/true);
};

TEST_F(InstanceLibraryTest, AllInstanceCollectorsSucceed) {
  const auto body = ScrapeBody(*exporter_);
  EXPECT_EQ(SampleValue(body, "pg_up"), 1);
  ExpectNoFailedCollector(body);
  EXPECT_EQ(SampleValue(body, "pg_control_timeline_id"), 1);
  EXPECT_GT(SampleValue(body, "pg_control_checkpoint_timestamp_seconds"), 1.7e9);
  EXPECT_GE(SampleValue(body, "pg_wal_directory_size_bytes"), 16 << 20);
  EXPECT_GE(SampleValue(body, "pg_wal_directory_files"), 1);
  EXPECT_GE(SampleValue(body, "pg_stat_bgwriter_buffers_alloc_total"), 0);
  EXPECT_FALSE(LinesStartingWith(body, "pg_stat_slru_blks_hit_total{name=").empty());
  EXPECT_GE(SampleValue(body, R"(pg_shmem_allocation_bytes{name="Buffer Blocks"})"), 128 << 20);
  EXPECT_EQ(SampleValue(body, R"(pg_database_connection_limit{datname="postgres"})"), -1);
  EXPECT_GT(SampleValue(body, R"(pg_database_size_bytes{datname="postgres"})"), 1 << 20);
  // Moved to the wraparound collectors.
  EXPECT_TRUE(LinesStartingWith(body, "pg_database_frozen_xid_age").empty());
  EXPECT_TRUE(LinesStartingWith(body, "pg_database_min_mxid_age").empty());
  // Standby-only collectors do not run on a primary.
  EXPECT_EQ(SampleValue(body, R"(pgtally_collector_skipped{collector="pg_standby",reason="role"})"),
            1);
  EXPECT_TRUE(LinesStartingWith(body, "pg_wal_receive_lsn_bytes").empty());
}

TEST_F(InstanceLibraryTest, TempFilesAndBytesMove) {
  const std::string temp_bytes = R"(pg_stat_database_temp_bytes_total{datname="postgres"})";
  const std::string temp_files = R"(pg_stat_database_temp_files_total{datname="postgres"})";
  const auto before = ScrapeBody(*exporter_);
  // A sort of 200,000 rows does not fit in 64 kB: it spills to a temporary file.
  pg_.Exec(
      "SET work_mem = '64kB';"
      "SELECT count(*) FROM (SELECT g FROM generate_series(1, 200000) g ORDER BY g DESC) s");
  const auto after = ScrapeUntil(*exporter_, [&](const std::string& body) {
    return ValueOr0(body, temp_bytes) > ValueOr0(before, temp_bytes);
  });
  EXPECT_GT(SampleValue(after, temp_bytes), ValueOr0(before, temp_bytes) + 1e6);
  EXPECT_GT(SampleValue(after, temp_files), ValueOr0(before, temp_files));
}

TEST_F(InstanceLibraryTest, CheckpointCounterIncreases) {
  const auto before = ScrapeBody(*exporter_);
  const double requested = SampleValue(before, "pg_checkpoints_requested_total");
  ASSERT_FALSE(std::isnan(requested));
  EXPECT_FALSE(std::isnan(SampleValue(before, "pg_checkpoints_timed_total")));
  pg_.Exec("CREATE TABLE IF NOT EXISTS dirty (x int); INSERT INTO dirty VALUES (1)");
  pg_.Exec("CHECKPOINT");
  const auto after = ScrapeUntil(*exporter_, [&](const std::string& body) {
    return SampleValue(body, "pg_checkpoints_requested_total") > requested;
  });
  EXPECT_EQ(SampleValue(after, "pg_checkpoints_requested_total"), requested + 1);
  EXPECT_GE(SampleValue(after, "pg_checkpoint_buffers_written_total"),
            SampleValue(before, "pg_checkpoint_buffers_written_total") + 1);
  EXPECT_GE(SampleValue(after, "pg_control_checkpoint_timestamp_seconds"),
            SampleValue(before, "pg_control_checkpoint_timestamp_seconds"));
  // Restartpoint counters exist only on 17+; the metric names do not change.
  EXPECT_TRUE(LinesStartingWith(after, "pg_restartpoints_done_total ").empty());
}

TEST_F(InstanceLibraryTest, WalBytesGrowAfterWrites) {
  const auto before = ScrapeBody(*exporter_);
  const double lsn = SampleValue(before, "pg_wal_current_lsn_bytes");
  const double wal_bytes = SampleValue(before, "pg_stat_wal_bytes_total");
  ASSERT_GT(lsn, 0);
  ASSERT_FALSE(std::isnan(wal_bytes));
  pg_.Exec(
      "CREATE TABLE IF NOT EXISTS wal_filler (x int, pad text);"
      "INSERT INTO wal_filler SELECT g, repeat('x', 100) FROM generate_series(1, 10000) g");
  const auto after = ScrapeUntil(*exporter_, [&](const std::string& body) {
    return SampleValue(body, "pg_stat_wal_bytes_total") > wal_bytes + 1e6;
  });
  EXPECT_GT(SampleValue(after, "pg_wal_current_lsn_bytes"), lsn + 1e6);
  EXPECT_GT(SampleValue(after, "pg_stat_wal_bytes_total"), wal_bytes + 1e6);
  EXPECT_GT(SampleValue(after, "pg_stat_wal_records_total"),
            SampleValue(before, "pg_stat_wal_records_total") + 10000);
}

// The test server runs with archive_mode off: the archiver reports that, its counters stay 0,
// and the ages have no sample (never archived).
TEST_F(InstanceLibraryTest, ArchiverWithArchivingOff) {
  const auto body = ScrapeBody(*exporter_);
  EXPECT_EQ(SampleValue(body, "pg_stat_archiver_enabled"), 0);
  EXPECT_EQ(SampleValue(body, "pg_stat_archiver_archived_total"), 0);
  EXPECT_EQ(SampleValue(body, "pg_stat_archiver_failed_total"), 0);
  EXPECT_EQ(SampleValue(body, "pg_stat_archiver_pending_wal_files"), 0);
  EXPECT_TRUE(std::isnan(SampleValue(body, "pg_stat_archiver_last_archive_age_seconds")));
  EXPECT_TRUE(std::isnan(SampleValue(body, "pg_stat_archiver_last_failure_age_seconds")));
  EXPECT_GT(SampleValue(body, "pg_stat_archiver_stats_reset_timestamp_seconds"), 1.7e9);
}

TEST_F(InstanceLibraryTest, SettingsInBaseUnits) {
  const auto body = ScrapeBody(*exporter_);
  EXPECT_EQ(SampleValue(body, "pg_settings_max_connections"), 100);              // no unit
  EXPECT_EQ(SampleValue(body, "pg_settings_shared_buffers_bytes"), 134217728);   // 16384 x 8kB
  EXPECT_EQ(SampleValue(body, "pg_settings_work_mem_bytes"), 4 << 20);           // 4096 kB
  EXPECT_EQ(SampleValue(body, "pg_settings_max_wal_size_bytes"), 1 << 30);       // 1024 MB
  EXPECT_EQ(SampleValue(body, "pg_settings_wal_segment_size_bytes"), 16 << 20);  // B
  EXPECT_EQ(SampleValue(body, "pg_settings_checkpoint_timeout_seconds"), 300);   // s
  EXPECT_EQ(SampleValue(body, "pg_settings_autovacuum_naptime_seconds"), 60);    // s
  EXPECT_EQ(SampleValue(body, "pg_settings_wal_sender_timeout_seconds"), 60);    // ms
  EXPECT_DOUBLE_EQ(SampleValue(body, "pg_settings_autovacuum_vacuum_cost_delay_seconds"), 0.002);
  EXPECT_EQ(SampleValue(body, "pg_settings_autovacuum_max_workers"), 3);
  EXPECT_DOUBLE_EQ(SampleValue(body, "pg_settings_autovacuum_vacuum_scale_factor"), 0.2);
  EXPECT_EQ(SampleValue(body, "pg_settings_autovacuum_freeze_max_age"), 200000000);
  EXPECT_EQ(SampleValue(body, "pg_settings_statement_timeout_seconds"), 0);
  EXPECT_EQ(SampleValue(body, "pg_settings_log_min_duration_statement_seconds"), -1);  // off
  EXPECT_EQ(SampleValue(body, "pg_settings_fsync"), 0);  // the test server turns it off
  EXPECT_EQ(SampleValue(body, "pg_settings_data_checksums"), 0);
  EXPECT_EQ(SampleValue(body, "pg_settings_pending_restart"), 0);
  // Settings the server does not have (16+, 17+) have no sample rather than a wrong one.
  EXPECT_TRUE(LinesStartingWith(body, "pg_settings_huge_pages_status_on ").empty());
  EXPECT_THAT(LinesStartingWith(body, "pg_settings_info{wal_level=\"replica\""), SizeIs(1));
}

TEST_F(InstanceLibraryTest, PendingRestartCountsChangedSettings) {
  PgServer pg;
  pg.Exec("ALTER SYSTEM SET max_connections = 90");
  pg.Exec("SELECT pg_reload_conf()");
  auto exporter = MakeExporter(pg.Dsn(), "", /*builtin=*/true);
  const auto body = ScrapeUntil(*exporter, [](const std::string& b) {
    return SampleValue(b, "pg_settings_pending_restart") == 1;
  });
  EXPECT_EQ(SampleValue(body, "pg_settings_pending_restart"), 1);
  EXPECT_EQ(SampleValue(body, "pg_settings_max_connections"), 100);  // until the restart
}

TEST_F(InstanceLibraryTest, PgStatIoOnlyOn16AndLater) {
  const int version = std::stoi(pg_.QueryValue("SHOW server_version_num"));
  pg_.Exec("CREATE TABLE IF NOT EXISTS io_filler AS SELECT g FROM generate_series(1, 1000) g");
  const auto body = ScrapeBody(*exporter_);
  if (version < 160000) {
    EXPECT_EQ(
        SampleValue(body, R"(pgtally_collector_skipped{collector="pg_stat_io",reason="version"})"),
        1);
    EXPECT_TRUE(LinesStartingWith(body, "pg_stat_io_").empty());
  } else {
    EXPECT_FALSE(
        LinesStartingWith(body, R"(pg_stat_io_hits_total{backend_type="client backend")").empty());
  }
}

// A real streaming standby of a dedicated primary, with a physical slot on the primary.
class ReplicationLibraryTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    primary_ = std::make_unique<PgServer>();
    primary_->Exec("SELECT pg_create_physical_replication_slot('pgtally_slot', true)");
    standby_ = PgServer::StandbyOf(*primary_);
    primary_->Exec(
        "CREATE TABLE replicated (x int);"
        "INSERT INTO replicated SELECT generate_series(1, 10000)");
  }
  static void TearDownTestSuite() {
    standby_.reset();  // before its primary
    primary_.reset();
  }
  static inline std::unique_ptr<PgServer> primary_;
  static inline std::unique_ptr<PgServer> standby_;
};

TEST_F(ReplicationLibraryTest, PrimarySeesItsStandbyAndSlot) {
  auto exporter = MakeExporter(primary_->Dsn(), "", /*builtin=*/true);
  const auto body = ScrapeUntil(*exporter, [](const std::string& b) {
    const auto lines = LinesStartingWith(b, "pg_stat_replication_replay_lag_bytes{");
    return lines.size() == 1 && lines[0].find("state=\"streaming\"") != std::string::npos;
  });
  ExpectNoFailedCollector(body);
  const auto replay = LinesStartingWith(body, "pg_stat_replication_replay_lag_bytes{");
  ASSERT_THAT(replay, SizeIs(1));
  EXPECT_THAT(replay[0],
              HasSubstr(R"(client_addr="127.0.0.1",state="streaming",sync_state="async")"));
  EXPECT_GE(std::stod(replay[0].substr(replay[0].rfind(' ') + 1)), 0);
  EXPECT_THAT(LinesStartingWith(body, "pg_stat_replication_replay_lag_seconds{"), SizeIs(1));
  EXPECT_THAT(LinesStartingWith(body, "pg_stat_replication_sent_lag_bytes{"), SizeIs(1));

  // The slot has no consumer (the standby streams without it): it retains all WAL since its
  // creation, which the inserts made grow.
  const std::string slot = R"({slot_name="pgtally_slot",slot_type="physical",database=""})";
  EXPECT_EQ(SampleValue(body, "pg_replication_slot_active" + slot), 0);
  EXPECT_GT(SampleValue(body, "pg_replication_slot_retained_bytes" + slot), 100000);
  EXPECT_EQ(SampleValue(body, "pg_replication_slot_invalidated" + slot), 0);
  EXPECT_EQ(
      SampleValue(body,
                  R"(pg_replication_slot_wal_status{slot_name="pgtally_slot",status="reserved"})"),
      1);
  EXPECT_EQ(SampleValue(
                body, R"(pg_replication_slot_wal_status{slot_name="pgtally_slot",status="lost"})"),
            0);
  const double retained = SampleValue(body, "pg_replication_slot_retained_bytes" + slot);
  primary_->Exec("INSERT INTO replicated SELECT generate_series(1, 10000)");
  EXPECT_GT(SampleValue(ScrapeBody(*exporter), "pg_replication_slot_retained_bytes" + slot),
            retained);
  EXPECT_EQ(SampleValue(body, "pg_in_recovery"), 0);
  EXPECT_EQ(PromtoolCheckMetrics(body), "");
}

TEST_F(ReplicationLibraryTest, StandbyReportsReceiveReplayAndReceiver) {
  auto exporter = MakeExporter(standby_->Dsn(), "", /*builtin=*/true);
  // Streaming, and a commit replayed (the primary commits asynchronously: its WAL writer
  // flushes, and so sends, a commit within a few hundred milliseconds).
  const auto body = ScrapeUntil(*exporter, [](const std::string& b) {
    return SampleValue(
               b, R"(pg_stat_wal_receiver_streaming{sender_host="127.0.0.1",slot_name=""})") == 1 &&
           !std::isnan(SampleValue(b, "pg_last_xact_replay_timestamp_seconds"));
  });
  ExpectNoFailedCollector(body);
  EXPECT_EQ(PromtoolCheckMetrics(body), "");
  EXPECT_EQ(SampleValue(body, "pg_in_recovery"), 1);
  EXPECT_GT(SampleValue(body, "pg_wal_receive_lsn_bytes"), 0);
  EXPECT_GT(SampleValue(body, "pg_wal_replay_lsn_bytes"), 0);
  EXPECT_GE(SampleValue(body, "pg_wal_replay_lag_bytes"), 0);
  EXPECT_EQ(SampleValue(body, "pg_wal_replay_paused"), 0);
  EXPECT_GT(SampleValue(body, "pg_last_xact_replay_timestamp_seconds"), 1.7e9);
  EXPECT_EQ(
      SampleValue(body, R"(pg_stat_wal_receiver_streaming{sender_host="127.0.0.1",slot_name=""})"),
      1);
  EXPECT_EQ(
      SampleValue(
          body, R"(pg_stat_wal_receiver_received_timeline{sender_host="127.0.0.1",slot_name=""})"),
      1);
  EXPECT_GT(
      SampleValue(
          body,
          R"(pg_stat_wal_receiver_latest_end_lsn_bytes{sender_host="127.0.0.1",slot_name=""})"),
      0);
  EXPECT_EQ(SampleValue(body, "pg_control_timeline_id"), 1);
  EXPECT_EQ(
      SampleValue(
          body,
          R"(pg_stat_database_conflicts_by_reason_total{datname="postgres",reason="snapshot"})"),
      0);
  EXPECT_FALSE(LinesStartingWith(body, "pg_stat_recovery_prefetch_prefetch_total").empty());
  // A standby has no current WAL write position; it has no slot and no standby of its own.
  EXPECT_EQ(SampleValue(body, R"(pgtally_collector_skipped{collector="pg_wal_lsn",reason="role"})"),
            1);
  EXPECT_TRUE(LinesStartingWith(body, "pg_stat_replication_").empty());

  // The standby follows new WAL: its replay position moves.
  const double replayed = SampleValue(body, "pg_wal_replay_lsn_bytes");
  primary_->Exec("INSERT INTO replicated SELECT generate_series(1, 1000)");
  const auto later = ScrapeUntil(*exporter, [&](const std::string& b) {
    return SampleValue(b, "pg_wal_replay_lsn_bytes") > replayed;
  });
  EXPECT_GT(SampleValue(later, "pg_wal_replay_lsn_bytes"), replayed);
}

// Which query each versioned collector runs, from 12 to 19, without a server.
TEST(InstanceLibraryVersions, VariantsFollowTheCatalog) {
  const auto loaded = LoadCollectors({PGTALLY_SOURCE_DIR "/queries"});
  for (const auto& error : loaded.errors) ADD_FAILURE() << error.ToString();
  std::map<std::string, const CollectorSpec*> by_name;
  for (const auto& spec : loaded.collectors) by_name[spec.name] = &spec;
  const auto sql = [&](const std::string& name, int version) -> std::string {
    const auto it = by_name.find(name);
    if (it == by_name.end()) {
      ADD_FAILURE() << "no collector " << name;
      return "";
    }
    const QueryVariant* query = it->second->QueryFor(version);
    return query == nullptr ? "<none>" : query->sql;
  };

  for (int major = 12; major <= 19; ++major) {
    const int version = major * 10000;
    SCOPED_TRACE(version);
    // Everything here has a query on every version from 14, most from 12.
    for (const char* name : {"pg_settings", "pg_settings_info", "pg_stat_database", "pg_database",
                             "pg_stat_database_conflicts", "pg_stat_bgwriter", "pg_checkpointer",
                             "pg_control_checkpoint", "pg_wal_lsn", "pg_wal_directory",
                             "pg_stat_archiver", "pg_stat_replication", "pg_replication_slots",
                             "pg_standby", "pg_stat_wal_receiver", "pg_stat_subscription"}) {
      EXPECT_NE(sql(name, version), "<none>") << name;
    }
    EXPECT_EQ(sql("pg_stat_wal", version) == "<none>", major < 14);
    EXPECT_EQ(sql("pg_stat_replication_slots", version) == "<none>", major < 14);
    EXPECT_EQ(sql("pg_stat_subscription_stats", version) == "<none>", major < 15);
    EXPECT_EQ(sql("pg_stat_recovery_prefetch", version) == "<none>", major < 15);
    EXPECT_EQ(sql("pg_stat_io", version) == "<none>", major < 16);
    EXPECT_EQ(sql("pg_stat_slru", version) == "<none>", major < 13);
    EXPECT_EQ(sql("pg_shmem_allocations", version) == "<none>", major < 13);
    EXPECT_EQ(sql("pg_replication_slot_wal_status", version) == "<none>", major < 13);

    // Checkpoints: pg_stat_bgwriter before 17, pg_stat_checkpointer after; num_done from 18.
    EXPECT_EQ(
        sql("pg_checkpointer", version).find("FROM pg_stat_checkpointer") != std::string::npos,
        major >= 17);
    EXPECT_EQ(sql("pg_checkpointer", version).find("NULL::bigint AS num_done") == std::string::npos,
              major >= 18);
    EXPECT_EQ(sql("pg_stat_bgwriter", version).find("NULL::bigint AS buffers_backend,") ==
                  std::string::npos,
              major < 17);
    // WAL write/sync counters left pg_stat_wal in 18.
    if (major >= 14) {
      EXPECT_EQ(
          sql("pg_stat_wal", version).find("NULL::float8 AS wal_write_time") == std::string::npos,
          major < 18);
    }
    // pg_stat_io: op_bytes on 16-17, byte columns of its own on 18+.
    if (major >= 16) {
      EXPECT_EQ(sql("pg_stat_io", version).find("op_bytes") != std::string::npos, major < 18);
    }
    // pg_stat_database: session counters from 14, parallel workers from 18.
    EXPECT_EQ(
        sql("pg_stat_database", version).find("session_time, active_time") != std::string::npos,
        major >= 14);
    EXPECT_EQ(sql("pg_stat_database", version).find("NULL::bigint AS parallel_workers_launched") ==
                  std::string::npos,
              major >= 18);
    // Slots: wal_status/safe_wal_size from 13, conflicting from 16, invalidation_reason from 17.
    EXPECT_EQ(sql("pg_replication_slots", version).find("safe_wal_size AS") != std::string::npos,
              major >= 13);
    EXPECT_EQ(sql("pg_replication_slots", version).find("conflicting::int") != std::string::npos,
              major >= 16);
    EXPECT_EQ(sql("pg_replication_slots", version).find("invalidation_reason") != std::string::npos,
              major >= 17);
    EXPECT_EQ(sql("pg_stat_database_conflicts", version).find("confl_active_logicalslot") !=
                  std::string::npos,
              major >= 16);
    // Replay pause: the three-state function from 14.
    EXPECT_EQ(sql("pg_standby", version).find("pg_get_wal_replay_pause_state") != std::string::npos,
              major >= 14);
    // Subscription workers: relid before 16, leader_pid in 16, worker_type from 17.
    EXPECT_EQ(sql("pg_stat_subscription", version).find("leader_pid") != std::string::npos,
              major == 16);
    EXPECT_EQ(sql("pg_stat_subscription", version).find("worker_type") != std::string::npos,
              major >= 17);
  }

  // PgBouncer collectors target the admin console; min_pool_size needs PgBouncer 1.16.
  for (const char* name : {"pgbouncer_pools", "pgbouncer_stats", "pgbouncer_databases",
                           "pgbouncer_databases_min_pool", "pgbouncer_lists", "pgbouncer_mem"}) {
    ASSERT_TRUE(by_name.count(name)) << name;
    EXPECT_EQ(by_name[name]->target_type, TargetType::kPgBouncer) << name;
    const bool needs_116 = std::string(name) == "pgbouncer_databases_min_pool";
    EXPECT_EQ(sql(name, 11200) == "<none>", needs_116) << name << " on PgBouncer 1.12";
    EXPECT_NE(sql(name, 11800), "<none>") << name << " on PgBouncer 1.18";
  }
}

}  // namespace
}  // namespace pgtally::testing
