// The Kubernetes manifests (deploy/kubernetes), rendered by `kubectl kustomize` as a user would:
// the sidecar's settings that a production pod depends on, and the sidecar itself, run from the
// rendered spec (its args, its mounted ConfigMaps and Secret, the database init script) against a
// real PostgreSQL, so that manifests and binary cannot drift apart. The schemas are checked by
// tests/kubernetes/validate.mjs.

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <map>

#include "http_client.h"
#include "os_util.h"
#include "pg_server.h"
#include "pgtally/http/basic_auth.h"
#include "process.h"
#include "temp_dir.h"

namespace pgtally::testing {
namespace {

using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::Not;
using namespace std::chrono_literals;

const std::string kExample = PGTALLY_SOURCE_DIR "/deploy/kubernetes/overlays/example";

std::string Base64Decode(const std::string& text) {
  std::string out;
  EXPECT_TRUE(DecodeBase64(text, out)) << text;
  return out;
}

std::vector<std::string> Strings(const YAML::Node& list) {
  std::vector<std::string> out;
  for (const auto& item : list) out.push_back(item.as<std::string>());
  return out;
}

// node[k1][k2]..., or an undefined node when a key is missing (yaml-cpp throws on chained lookups
// through a missing key).
YAML::Node Get(const YAML::Node& node, std::initializer_list<std::string> keys) {
  YAML::Node current = YAML::Clone(node);
  for (const auto& key : keys) {
    if (!current.IsMap() || !current[key]) return YAML::Node(YAML::NodeType::Undefined);
    const YAML::Node child = current[key];
    current.reset(child);
  }
  return current;
}

// The named entry of a list of maps (containers, volumes, ports...), or an undefined node.
YAML::Node Named(const YAML::Node& list, const std::string& name) {
  for (const auto& item : list) {
    if (item["name"] && item["name"].as<std::string>() == name) return item;
  }
  return YAML::Node(YAML::NodeType::Undefined);
}

// Whether two YAML trees hold the same data, whatever the order of map keys. Scalars compare as
// text (so an octal 0440 and kubectl's decimal 288 differ).
bool SameData(const YAML::Node& a, const YAML::Node& b) {
  if (a.Type() != b.Type()) return false;
  switch (a.Type()) {
    case YAML::NodeType::Scalar:
      return a.Scalar() == b.Scalar();
    case YAML::NodeType::Sequence:
      if (a.size() != b.size()) return false;
      for (std::size_t i = 0; i < a.size(); ++i) {
        if (!SameData(a[i], b[i])) return false;
      }
      return true;
    case YAML::NodeType::Map:
      if (a.size() != b.size()) return false;
      for (const auto& entry : a) {
        const auto key = entry.first.as<std::string>();
        if (!b[key] || !SameData(entry.second, b[key])) return false;
      }
      return true;
    default:
      return true;
  }
}

// The objects `kubectl kustomize` renders for the example overlay.
class Manifests : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    Process render({"kubectl", "kustomize", kExample});
    ASSERT_EQ(render.Wait(60s), 0)
        << "kubectl kustomize failed (is kubectl installed?): " << render.Stderr();
    objects_ = new std::vector<YAML::Node>(YAML::LoadAll(render.Stdout()));
  }
  static void TearDownTestSuite() { delete objects_; }

  static YAML::Node Object(const std::string& kind, const std::string& name_prefix = "") {
    for (const auto& object : *objects_) {
      if (object["kind"].as<std::string>() == kind &&
          object["metadata"]["name"].as<std::string>().starts_with(name_prefix)) {
        return object;
      }
    }
    ADD_FAILURE() << "no " << kind << " " << name_prefix << " in the rendered manifests";
    return YAML::Node(YAML::NodeType::Undefined);
  }
  static YAML::Node PodSpec() { return Object("StatefulSet")["spec"]["template"]["spec"]; }
  static YAML::Node Container(const std::string& name) {
    return Named(PodSpec()["containers"], name);
  }

  static std::vector<YAML::Node>* objects_;
};

std::vector<YAML::Node>* Manifests::objects_ = nullptr;

TEST_F(Manifests, SidecarIsLockedDown) {
  const auto pod = PodSpec();
  const auto pgtally = Container("pgtally");
  ASSERT_TRUE(pgtally.IsDefined());
  const auto security = pgtally["securityContext"];
  EXPECT_TRUE(security["runAsNonRoot"].as<bool>());
  EXPECT_GT(security["runAsUser"].as<int>(), 0);
  EXPECT_TRUE(security["readOnlyRootFilesystem"].as<bool>());
  EXPECT_FALSE(security["allowPrivilegeEscalation"].as<bool>());
  EXPECT_THAT(Strings(security["capabilities"]["drop"]), Contains("ALL"));
  EXPECT_EQ(security["seccompProfile"]["type"].as<std::string>(), "RuntimeDefault");
  EXPECT_EQ(pod["securityContext"]["seccompProfile"]["type"].as<std::string>(), "RuntimeDefault");
  for (const char* kind : {"requests", "limits"}) {
    for (const char* resource : {"cpu", "memory"}) {
      EXPECT_TRUE(pgtally["resources"][kind][resource].IsDefined()) << kind << "." << resource;
    }
  }
  // Anything writable is an emptyDir.
  const auto tmp = Named(pgtally["volumeMounts"], "pgtally-tmp");
  ASSERT_TRUE(tmp.IsDefined());
  EXPECT_EQ(tmp["mountPath"].as<std::string>(), "/tmp");
  EXPECT_TRUE(Named(pod["volumes"], "pgtally-tmp")["emptyDir"].IsDefined());
}

TEST_F(Manifests, ProbesPortsAndScrapeConfiguration) {
  const auto pgtally = Container("pgtally");
  const auto port = Named(pgtally["ports"], "metrics");
  ASSERT_TRUE(port.IsDefined());
  EXPECT_EQ(port["containerPort"].as<int>(), 9187);
  EXPECT_THAT(Strings(pgtally["args"]), Contains("--web.listen-address=:9187"));
  EXPECT_EQ(pgtally["livenessProbe"]["httpGet"]["path"].as<std::string>(), "/healthz");
  EXPECT_EQ(pgtally["livenessProbe"]["httpGet"]["port"].as<std::string>(), "metrics");
  EXPECT_EQ(pgtally["readinessProbe"]["httpGet"]["path"].as<std::string>(), "/readyz");
  EXPECT_EQ(pgtally["readinessProbe"]["httpGet"]["port"].as<std::string>(), "metrics");

  const auto annotations = Object("StatefulSet")["spec"]["template"]["metadata"]["annotations"];
  EXPECT_EQ(annotations["prometheus.io/scrape"].as<std::string>(), "true");
  EXPECT_EQ(annotations["prometheus.io/port"].as<std::string>(), "9187");
  EXPECT_EQ(annotations["prometheus.io/path"].as<std::string>(), "/metrics");

  const auto service_port = Named(Object("Service")["spec"]["ports"], "metrics");
  ASSERT_TRUE(service_port.IsDefined());
  EXPECT_EQ(service_port["targetPort"].as<std::string>(), "metrics");
  const auto pod_labels = Object("StatefulSet")["spec"]["template"]["metadata"]["labels"];
  const auto monitor = Object("PodMonitor");
  for (const auto& label : monitor["spec"]["selector"]["matchLabels"]) {
    EXPECT_EQ(pod_labels[label.first.as<std::string>()].as<std::string>(),
              label.second.as<std::string>());
  }
  EXPECT_EQ(monitor["spec"]["podMetricsEndpoints"][0]["port"].as<std::string>(), "metrics");
  EXPECT_EQ(monitor["spec"]["podMetricsEndpoints"][0]["path"].as<std::string>(), "/metrics");
}

TEST_F(Manifests, SecretsAreFilesAndConfigMapsAreLiveDirectories) {
  const auto pod = PodSpec();
  const auto pgtally = Container("pgtally");
  // No password in the environment, not even by reference.
  for (const auto& container : pod["containers"]) {
    for (const auto& env : container["env"]) {
      const auto name = env["name"].as<std::string>();
      EXPECT_FALSE(Get(env, {"valueFrom", "secretKeyRef"}).IsDefined()) << name;
      if (env["value"]) {
        EXPECT_THAT(env["value"].as<std::string>(), Not(HasSubstr("password=")));
      }
      if (name.find("PASSWORD") != std::string::npos) {
        EXPECT_TRUE(name.ends_with("_FILE")) << name;
      }
    }
  }
  const auto secret_volume = Named(pod["volumes"], "pgtally-secret");
  ASSERT_TRUE(secret_volume["secret"].IsDefined());
  EXPECT_TRUE(
      Object("Secret", secret_volume["secret"]["secretName"].as<std::string>()).IsDefined());
  EXPECT_THAT(
      Strings(pgtally["args"]),
      Contains("--connection.password-file=" +
               Named(pgtally["volumeMounts"], "pgtally-secret")["mountPath"].as<std::string>() +
               "/password"));
  // Kubernetes updates mounted ConfigMaps and Secrets only for whole-volume mounts.
  for (const auto& mount : pgtally["volumeMounts"]) {
    EXPECT_FALSE(mount["subPath"].IsDefined()) << mount["name"];
  }
  // Live-reloaded ConfigMaps keep their names: edited in place, they do not restart the pod.
  for (const char* name : {"pgtally-config", "pgtally-collectors"}) {
    EXPECT_EQ(Named(pod["volumes"], name)["configMap"]["name"].as<std::string>(), name);
  }
  // The sidecar reports on its own pod's server: loopback, never the Service.
  const auto config =
      YAML::Load(Object("ConfigMap", "pgtally-config")["data"]["pgtally.yaml"].as<std::string>());
  const auto dsn = config["data_source_name"].as<std::string>();
  EXPECT_THAT(dsn, HasSubstr("host=127.0.0.1"));
  EXPECT_THAT(dsn, Not(HasSubstr("password")));
}

TEST_F(Manifests, SnippetForExistingPodsMatchesTheBase) {
  const auto patch = YAML::LoadFile(PGTALLY_SOURCE_DIR "/deploy/kubernetes/sidecar-snippet.yaml");
  const auto spec = patch["spec"]["template"]["spec"];
  auto snippet = YAML::Clone(Named(spec["containers"], "pgtally"));
  auto rendered = YAML::Clone(Container("pgtally"));
  ASSERT_TRUE(snippet.IsDefined());
  EXPECT_EQ(snippet["image"].as<std::string>(), rendered["image"].as<std::string>());
  EXPECT_TRUE(SameData(snippet, rendered)) << "sidecar-snippet.yaml:\n"
                                           << snippet << "\nbase/statefulset.yaml:\n"
                                           << rendered;
  for (const auto& volume : spec["volumes"]) {
    const auto name = volume["name"].as<std::string>();
    auto ours = YAML::Clone(volume);
    auto theirs = YAML::Clone(Named(PodSpec()["volumes"], name));
    ASSERT_TRUE(theirs.IsDefined()) << name;
    if (ours["secret"]) {  // the Secret's name is the user's; kustomize's has a hash suffix
      ours["secret"].remove("secretName");
      theirs["secret"].remove("secretName");
      ours["secret"].remove("defaultMode");  // octal in the snippet, decimal once rendered
      theirs["secret"].remove("defaultMode");
    }
    EXPECT_TRUE(SameData(ours, theirs)) << name;
  }
}

// The sidecar as the rendered pod runs it. Mount paths become temporary directories holding what
// the kubelet would put there, the listen address a free loopback port, and PGPORT points the
// DSN's default port at the test server; everything else is the manifests' own.
TEST_F(Manifests, SidecarRunsFromTheRenderedSpec) {
  const auto pod = PodSpec();
  TempDir root;
  std::map<std::string, std::string> mounts;  // mountPath -> local directory
  const auto materialize = [&](const YAML::Node& container) {
    for (const auto& mount : container["volumeMounts"]) {
      const auto name = mount["name"].as<std::string>();
      const auto local = root / (container["name"].as<std::string>() + "/" + name);
      std::filesystem::create_directories(local);
      mounts[mount["mountPath"].as<std::string>()] = local;
      const auto volume = Named(pod["volumes"], name);
      std::map<std::string, std::string> files;
      if (volume["configMap"]) {
        const auto map = Object("ConfigMap", volume["configMap"]["name"].as<std::string>());
        for (const auto& entry : map["data"]) {
          files[entry.first.as<std::string>()] = entry.second.as<std::string>();
        }
      } else if (volume["secret"]) {
        const auto secret = Object("Secret", volume["secret"]["secretName"].as<std::string>());
        for (const auto& entry : secret["data"]) {
          files[entry.first.as<std::string>()] = Base64Decode(entry.second.as<std::string>());
        }
      }
      const auto items = volume["configMap"] ? Get(volume, {"configMap", "items"})
                                             : Get(volume, {"secret", "items"});
      if (items.IsDefined()) {
        std::map<std::string, std::string> selected;
        for (const auto& item : items) {
          selected[item["path"].as<std::string>()] = files[item["key"].as<std::string>()];
        }
        files = selected;
      }
      for (const auto& [file, text] : files) {
        std::ofstream(local + "/" + file) << text;
      }
    }
  };
  // A path value ("/etc/x/y" or "--flag=/etc/x/y") under a mount, moved to the local directory.
  const auto local_path = [&](std::string text) {
    const auto start = text.starts_with("--") ? text.find('=') + 1 : 0;
    std::string best;
    for (const auto& [mount_path, local] : mounts) {
      if (text.compare(start, mount_path.size(), mount_path) == 0 &&
          mount_path.size() > best.size()) {
        best = mount_path;
      }
    }
    if (!best.empty()) text.replace(start, best.size(), mounts[best]);
    return text;
  };
  const auto postgres = Container("postgres");
  const auto pgtally = Container("pgtally");
  materialize(postgres);
  materialize(pgtally);

  // The database, initialised as the postgres container's entrypoint would: its init script
  // creates pgtally's role with the password from the Secret, and loopback TCP asks for it.
  PgServer pg(PgServer::Options{.hba_first = {"host all pgtally 127.0.0.1/32 scram-sha-256"}});
  std::vector<std::string> init_env = {"PGHOST=127.0.0.1", "PGPORT=" + std::to_string(pg.port()),
                                       "POSTGRES_USER=postgres", "POSTGRES_DB=postgres"};
  for (const auto& env : postgres["env"]) {
    init_env.push_back(env["name"].as<std::string>() + "=" +
                       local_path(env["value"].as<std::string>()));
  }
  const auto init_dir = mounts.at("/docker-entrypoint-initdb.d");
  for (const auto& entry : std::filesystem::directory_iterator(init_dir)) {
    Process init({"sh", entry.path().string()}, init_env);
    ASSERT_EQ(init.Wait(60s), 0) << entry.path() << ": " << init.Stderr();
  }

  std::vector<std::string> argv = {PGTALLY_BINARY};
  for (const auto& arg : Strings(pgtally["args"])) {
    argv.push_back(arg.starts_with("--web.listen-address=") ? "--web.listen-address=127.0.0.1:0"
                                                            : local_path(arg));
  }
  std::vector<std::string> env = {"PGPORT=" + std::to_string(pg.port())};
  for (const auto& variable : pgtally["env"]) {
    env.push_back(variable["name"].as<std::string>() + "=" +
                  local_path(variable["value"].as<std::string>()));
  }
  Process process(argv, env);
  const auto url = PgtallyUrl(process);
  ASSERT_FALSE(url.empty()) << process.Stderr();

  EXPECT_EQ(HttpGet(url + pgtally["livenessProbe"]["httpGet"]["path"].as<std::string>()).status,
            200);
  EXPECT_EQ(HttpGet(url + pgtally["readinessProbe"]["httpGet"]["path"].as<std::string>()).status,
            200);
  const auto body = HttpGet(url + "/metrics", {"X-Prometheus-Scrape-Timeout-Seconds: 10"}).body;
  EXPECT_EQ(SampleValue(body, "pg_up"), 1) << process.Stderr();
  EXPECT_EQ(SampleValue(body, "pgtally_config_last_reload_successful"), 1);
  // The ConfigMap's custom collector runs, and pg_monitor is enough for every built-in one.
  EXPECT_EQ(SampleValue(body, "pgtally_collector_success{collector=\"long_running_queries\"}"), 1);
  EXPECT_THAT(LinesStartingWith(body, "pgtally_collector_success{"),
              Not(Contains(::testing::EndsWith(" 0"))));
  EXPECT_GE(LinesStartingWith(body, "pgtally_collector_success{").size(), 20u);
  EXPECT_EQ(pg.QueryValue("SELECT count(*) FROM pg_stat_activity WHERE usename = 'pgtally'"), "1");

  process.Signal(SIGTERM);
  EXPECT_EQ(process.Wait(10s), 0);
  const auto password = ReadFile(
      mounts.at(Named(pgtally["volumeMounts"], "pgtally-secret")["mountPath"].as<std::string>()) +
      "/password");
  ASSERT_FALSE(password.empty());
  EXPECT_THAT(process.Stderr(), Not(HasSubstr(password.substr(0, password.find('\n')))));
}

}  // namespace
}  // namespace pgtally::testing
