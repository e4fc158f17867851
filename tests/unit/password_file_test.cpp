// Issue 16: a 200 MB password file was read whole at every connection attempt; a FIFO blocked
// the scrape for ever. The file is now bounded in size, must be a regular file, is read off the
// connecting thread with a deadline, and is not read again while it is unchanged.

#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include "pgtally/pg/connection.h"
#include "pgtally/pg/deadline_calls.h"

namespace pgtally {
namespace {

using ::testing::HasSubstr;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

class PasswordFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("pgtally-pwfile-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string Path(const std::string& name) const { return (dir_ / name).string(); }

  std::filesystem::path dir_;
};

// Bytes this process has read(): /proc/self/io's rchar.
long long BytesRead() {
  std::ifstream io("/proc/self/io");
  std::string key;
  long long value = 0;
  while (io >> key >> value) {
    if (key == "rchar:") return value;
  }
  return -1;
}

TEST_F(PasswordFileTest, AnOversizedFileIsRefusedUnread) {
  // 200 MB, sparse: what the reproduction used, without writing 200 MB to disk.
  const std::string path = Path("huge");
  const int fd = open(path.c_str(), O_CREAT | O_WRONLY, 0600);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(ftruncate(fd, 200LL << 20), 0);
  close(fd);
  const long long before = BytesRead();
  const auto started = Clock::now();
  pg::Error error;
  EXPECT_EQ(pg::ReadPasswordFile(path, error), std::nullopt);
  const auto took = Clock::now() - started;
  EXPECT_THAT(error.message, HasSubstr(path));
  EXPECT_THAT(error.message, HasSubstr("209715200 bytes, more than the 16384"));
  // Not read: the process read less than one file's worth of bytes (before: 200 MB).
  EXPECT_LT(BytesRead() - before, 64 * 1024);
  EXPECT_LT(took, 500ms);
  // Just at the bound is a password still.
  std::ofstream(Path("max")) << std::string(pg::kMaxPasswordFileBytes, 'x');
  EXPECT_EQ(pg::ReadPasswordFile(Path("max"), error)->size(), pg::kMaxPasswordFileBytes);
}

TEST_F(PasswordFileTest, AFifoIsRefusedAtOnce) {
  // No writer ever comes: opening it for reading would wait for ever.
  const std::string path = Path("fifo");
  ASSERT_EQ(mkfifo(path.c_str(), 0600), 0);
  const auto started = Clock::now();
  pg::Error error;
  EXPECT_EQ(pg::ReadPasswordFile(path, error), std::nullopt);
  EXPECT_LT(Clock::now() - started, 500ms);
  EXPECT_THAT(error.message, HasSubstr("the password file " + path + " is not a regular file"));
}

TEST_F(PasswordFileTest, AnUnchangedFileIsNotReadAgain) {
  const std::string path = Path("password");
  std::ofstream(path) << std::string(8000, 'p') << "\n";
  pg::Error error;
  ASSERT_EQ(pg::ReadPasswordFile(path, error), std::string(8000, 'p'));
  const long long before = BytesRead();
  for (int i = 0; i < 100; ++i) ASSERT_EQ(pg::ReadPasswordFile(path, error)->size(), 8000u);
  // Before: 100 reads of 8 KB, 800 KB. Now the file's stamp says it is unchanged.
  EXPECT_LT(BytesRead() - before, 8000);
}

TEST_F(PasswordFileTest, ARotatedFileIsReadAfresh) {
  const std::string path = Path("password");
  std::ofstream(path) << "first";
  pg::Error error;
  EXPECT_EQ(pg::ReadPasswordFile(path, error), "first");
  // Rewritten in place with the same size: its modification time changes.
  std::this_thread::sleep_for(10ms);
  std::ofstream(path) << "other";
  EXPECT_EQ(pg::ReadPasswordFile(path, error), "other");
  // Replaced as a Kubernetes Secret is, by a rename: another inode.
  std::ofstream(Path("next")) << "third";
  std::filesystem::rename(Path("next"), path);
  EXPECT_EQ(pg::ReadPasswordFile(path, error), "third");
}

TEST(DeadlineCalls, ALateCallIsAbandonedAndTheOutstandingOnesAreBounded) {
  pg::DeadlineCalls calls(2);
  const std::function<int()> slow = [] {
    std::this_thread::sleep_for(1500ms);
    return 1;
  };
  auto started = Clock::now();
  const auto late = calls.Run(slow, Clock::now() + 100ms);
  EXPECT_EQ(late.status, pg::DeadlineCalls::Status::kLate);
  EXPECT_LT(Clock::now() - started, 400ms);
  EXPECT_EQ(calls.Run(slow, Clock::now() + 100ms).status, pg::DeadlineCalls::Status::kLate);
  // Two still running: a third is refused at once rather than queued behind them.
  started = Clock::now();
  EXPECT_EQ(calls.Run(slow, Clock::now() + 5s).status, pg::DeadlineCalls::Status::kBusy);
  EXPECT_LT(Clock::now() - started, 100ms);
  EXPECT_EQ(calls.outstanding(), 2);
  // Once they end, calls run again, and a quick one gives its value.
  std::this_thread::sleep_for(1600ms);
  const auto done = calls.Run<int>([] { return 7; }, Clock::now() + 5s);
  EXPECT_EQ(done.status, pg::DeadlineCalls::Status::kDone);
  EXPECT_EQ(done.value, 7);
}

}  // namespace
}  // namespace pgtally
