// The container image (deploy/Dockerfile). No Docker engine runs on our machines, so the image is
// checked piece by piece: its runtime stage installs the Debian package of every shared library
// the built binary loads (from `ldd` and dpkg's own records), it is built by the README's
// scripts, and the installed layout it copies (binary plus built-in collectors) works.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <csignal>
#include <deque>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>

#include "http_client.h"
#include "os_util.h"
#include "pg_server.h"
#include "process.h"
#include "temp_dir.h"

namespace pgtally::testing {
namespace {

using ::testing::HasSubstr;
using namespace std::chrono_literals;

// One FROM ... section of a Dockerfile: its instructions with continuation lines joined.
struct Stage {
  std::string from;
  std::vector<std::pair<std::string, std::string>> instructions;  // {KEYWORD, arguments}
};

std::vector<Stage> ParseDockerfile(const std::string& text) {
  std::vector<Stage> stages;
  std::istringstream in(text);
  std::string line, logical;
  const auto finish = [&] {
    const auto start = logical.find_first_not_of(" \t");
    if (start == std::string::npos) return;
    const auto space = logical.find_first_of(" \t", start);
    const std::string keyword = logical.substr(start, space - start);
    const std::string arguments = space == std::string::npos ? "" : logical.substr(space + 1);
    if (keyword == "FROM") {
      stages.push_back({arguments, {}});
    } else if (!stages.empty()) {
      stages.back().instructions.emplace_back(keyword, arguments);
    }
    logical.clear();
  };
  while (std::getline(in, line)) {
    const auto first = line.find_first_not_of(" \t");
    if (first != std::string::npos && line[first] == '#') continue;  // a comment
    if (line.ends_with('\\')) {
      logical += line.substr(0, line.size() - 1) + " ";
      continue;
    }
    logical += line;
    finish();
  }
  finish();
  return stages;
}

std::vector<std::string> Words(const std::string& text) {
  std::istringstream in(text);
  std::vector<std::string> words;
  for (std::string word; in >> word;) words.push_back(word);
  return words;
}

// The packages a stage's RUN instructions name after `apt-get install`.
std::set<std::string> AptInstalls(const Stage& stage) {
  std::set<std::string> packages;
  for (const auto& [keyword, arguments] : stage.instructions) {
    if (keyword != "RUN") continue;
    const auto words = Words(arguments);
    for (std::size_t i = 0; i + 1 < words.size(); ++i) {
      if (words[i] != "apt-get" || words[i + 1] != "install") continue;
      for (std::size_t j = i + 2; j < words.size() && words[j] != "&&" && words[j] != ";"; ++j) {
        if (!words[j].starts_with('-')) packages.insert(words[j]);
      }
    }
  }
  return packages;
}

// A command's standard output; the test fails if it does not exit 0.
std::string Output(const std::vector<std::string>& argv) {
  Process process(argv);
  EXPECT_EQ(process.Wait(60s), 0) << argv.front() << ": " << process.Stderr();
  return process.Stdout();
}

// The Debian package that installed `library` (a path as ldd prints it). With merged /usr, dpkg
// may know the file under /usr/lib or under /lib.
std::string PackageOf(const std::string& library) {
  for (const std::string& path : {library, "/usr" + library}) {
    Process query({"dpkg-query", "-S", path});
    if (query.Wait(60s) != 0) continue;
    const std::string line = query.Stdout();
    return line.substr(0, line.find_first_of(":,"));
  }
  ADD_FAILURE() << "no Debian package provides " << library;
  return "";
}

bool Installed(const std::string& package) {
  Process query({"dpkg-query", "-W", "-f=${Status}", package});
  return query.Wait(60s) == 0 && query.Stdout().find("install ok installed") != std::string::npos;
}

// `packages` and everything they depend on, as installed on this machine (apt installs the
// same closure in the image).
std::set<std::string> DependencyClosure(const std::set<std::string>& packages) {
  std::set<std::string> closure;
  std::deque<std::string> queue(packages.begin(), packages.end());
  const std::regex name(R"(^\s*([a-z0-9][a-z0-9+.-]*))");
  while (!queue.empty()) {
    const std::string package = queue.front();
    queue.pop_front();
    if (!closure.insert(package).second) continue;
    const std::string depends =
        Output({"dpkg-query", "-W", "-f=${Depends},${Pre-Depends}", package});
    std::istringstream alternatives(std::regex_replace(depends, std::regex("[,|]"), "\n"));
    for (std::string alternative; std::getline(alternatives, alternative);) {
      std::smatch match;
      if (std::regex_search(alternative, match, name) && Installed(match[1])) {
        queue.push_back(match[1]);
      }
    }
  }
  return closure;
}

class Container : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto stages = ParseDockerfile(ReadFile(PGTALLY_SOURCE_DIR "/deploy/Dockerfile"));
    ASSERT_EQ(stages.size(), 2u);
    build_ = stages[0];
    runtime_ = stages[1];
  }

  Stage build_;
  Stage runtime_;
};

TEST_F(Container, RuntimeStageInstallsEveryLibraryTheBinaryLoads) {
  const std::set<std::string> listed = AptInstalls(runtime_);
  const std::set<std::string> pulled_in = DependencyClosure(listed);

  // Libraries the binary names itself must be listed outright; the ones they load in turn must
  // come with what is listed.
  std::set<std::string> needed;
  const std::regex needed_line(R"(\(NEEDED\)\s+Shared library: \[([^\]]+)\])");
  const std::string dynamic = Output({"readelf", "-d", PGTALLY_BINARY});
  for (std::sregex_iterator it(dynamic.begin(), dynamic.end(), needed_line), end; it != end; ++it) {
    needed.insert((*it)[1]);
  }
  ASSERT_GE(needed.size(), 5u) << dynamic;

  const std::regex ldd_line(R"(^\s*(\S+) => (/\S+))");
  const std::string loaded = Output({"ldd", PGTALLY_BINARY});
  std::istringstream lines(loaded);
  int libraries = 0;
  for (std::string line; std::getline(lines, line);) {
    std::smatch match;
    if (!std::regex_search(line, match, ldd_line)) continue;
    // A sanitizer build (scripts/sanitize.sh) links the sanitizers' runtimes; images never do.
    if (std::regex_search(match[1].str(), std::regex("^lib(a|ub|t|l)san\\."))) continue;
    ++libraries;
    const std::string package = PackageOf(match[2]);
    if (needed.contains(match[1])) {
      EXPECT_TRUE(listed.contains(package))
          << "deploy/Dockerfile's runtime stage must install " << package << " for " << match[1];
    } else {
      EXPECT_TRUE(pulled_in.contains(package))
          << package << " (for " << match[1] << ") is not pulled in by the runtime stage";
    }
  }
  EXPECT_GE(libraries, static_cast<int>(needed.size()));
}

TEST_F(Container, StagesAreBuiltTheReadmeWayAndRunAsNonRoot) {
  EXPECT_EQ(build_.from, "debian:12-slim AS build");
  EXPECT_EQ(runtime_.from, "debian:12-slim");
  std::string build_steps;
  for (const auto& [keyword, arguments] : build_.instructions) {
    if (keyword == "RUN") build_steps += arguments;
  }
  // The same scripts as the README's commands.
  EXPECT_THAT(build_steps, HasSubstr("bash scripts/install-deps.sh build"));
  EXPECT_THAT(build_steps, HasSubstr("bash scripts/build.sh"));
  EXPECT_THAT(ReadFile(PGTALLY_SOURCE_DIR "/scripts/demo.sh"), HasSubstr("bash scripts/build.sh"));

  std::map<std::string, std::string> runtime;
  for (const auto& [keyword, arguments] : runtime_.instructions) runtime[keyword] = arguments;
  EXPECT_TRUE(std::regex_match(runtime["USER"], std::regex("[1-9][0-9]*:[1-9][0-9]*")))
      << "USER must be a numeric non-root uid:gid, so runAsNonRoot can check it";
  EXPECT_EQ(runtime["EXPOSE"], "9187");
  EXPECT_EQ(runtime["ENTRYPOINT"], "[\"/usr/local/bin/pgtally\"]");
  EXPECT_FALSE(runtime.contains("HEALTHCHECK")) << "Kubernetes probes check health";
  EXPECT_THAT(runtime["COPY"], HasSubstr("--from=build /out/usr/local/ /usr/local/"));
}

// What the runtime stage copies is `cmake --install` of the build: the binary finds its built-in
// collectors beside it and serves them.
TEST_F(Container, InstalledLayoutServesTheBuiltinCollectors) {
  TempDir root;
  Process install({"cmake", "--install", PGTALLY_BUILD_DIR, "--prefix", "/usr/local"},
                  {"DESTDIR=" + root.path()});
  ASSERT_EQ(install.Wait(60s), 0) << install.Stderr();
  Process pgtally({root / "usr/local/bin/pgtally", "--web.listen-address=127.0.0.1:0"},
                  {"DATA_SOURCE_NAME=" + SharedPgServer().Dsn()});
  const auto url = PgtallyUrl(pgtally);
  ASSERT_FALSE(url.empty()) << pgtally.Stderr();
  const auto body = HttpGet(url + "/metrics").body;
  EXPECT_EQ(SampleValue(body, "pg_up"), 1);
  EXPECT_FALSE(LinesStartingWith(body, "pg_stat_database_xact_commit_total{").empty());
  EXPECT_FALSE(LinesStartingWith(body, "pg_settings_").empty());
  pgtally.Signal(SIGTERM);
  EXPECT_EQ(pgtally.Wait(10s), 0);

  // Each collector file's editor modeline names the schema relative to the file: it must be
  // installed where that points.
  const std::string modeline = "# yaml-language-server: $schema=";
  int modelines = 0;
  for (const auto& entry :
       std::filesystem::directory_iterator(root / "usr/local/share/pgtally/queries")) {
    std::ifstream file(entry.path());
    std::string first;
    std::getline(file, first);
    if (!first.starts_with(modeline)) continue;
    ++modelines;
    const auto schema = entry.path().parent_path() / first.substr(modeline.size());
    EXPECT_TRUE(std::filesystem::is_regular_file(schema))
        << entry.path() << " names " << schema << ", which is not installed";
  }
  EXPECT_GT(modelines, 10);
}

// HTTPS works from the installed layout too: the OpenSSL compatibility libraries CivetWeb needs
// are installed beside the binary (lib/pgtally) and found there.
TEST_F(Container, InstalledLayoutServesHttps) {
  TempDir root;
  Process install({"cmake", "--install", PGTALLY_BUILD_DIR, "--prefix", "/usr/local"},
                  {"DESTDIR=" + root.path()});
  ASSERT_EQ(install.Wait(60s), 0) << install.Stderr();
  EXPECT_TRUE(std::filesystem::exists(root / "usr/local/lib/pgtally/libssl.so"));
  Process openssl({"openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                   "-subj", "/CN=127.0.0.1", "-keyout", root / "key.pem", "-out",
                   root / "cert.pem"});
  ASSERT_EQ(openssl.Wait(60s), 0) << openssl.Stderr();
  root.Write("web.yaml", "tls_server_config:\n  cert_file: cert.pem\n  key_file: key.pem\n");
  Process pgtally({root / "usr/local/bin/pgtally", "--web.listen-address=127.0.0.1:0",
                   "--web.config.file", root / "web.yaml"},
                  {"DATA_SOURCE_NAME=" + SharedPgServer().Dsn()});
  const auto url = PgtallyUrl(pgtally);
  ASSERT_FALSE(url.empty()) << pgtally.Stderr();
  Process curl({"curl", "-sS", "--max-time", "20", "--insecure",
                "https://127.0.0.1:" + url.substr(url.rfind(':') + 1) + "/metrics"});
  EXPECT_EQ(curl.Wait(30s), 0) << curl.Stderr();
  EXPECT_EQ(SampleValue(curl.Stdout(), "pg_up"), 1);
  pgtally.Signal(SIGTERM);
  EXPECT_EQ(pgtally.Wait(10s), 0);
}

}  // namespace
}  // namespace pgtally::testing
