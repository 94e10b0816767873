// The deployment files against the binaries they start: every flag that the Kubernetes
// manifests (deploy/k8s), the Slurm scripts (deploy/slurm) and the Dockerfiles
// (deploy/docker) pass must be one the binary's --help lists; the ports they name must
// agree (listen flags, container ports, probes, Service, the workers' address); the
// manifests must be valid YAML of the kinds and API versions Kubernetes serves, with the
// fields those kinds require; the Dockerfiles must be multi-stage, non-root, on the
// stated bases. Where kubectl is installed the overlays are also rendered with its
// kustomize and the rendered objects checked the same way.
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/std_regex.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "yaml-cpp/yaml.h"

namespace sf {
namespace {

namespace fs = std::filesystem;

fs::path Source(const std::string& relative) {
  const char* root = std::getenv("SF_SOURCE_DIR");
  return fs::path(root != nullptr ? root : ".") / relative;
}

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// stdout and stderr of `command`, and whether it exited 0.
bool Capture(const std::string& command, std::string* out) {
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return false;
  char buffer[4096];
  out->clear();
  for (size_t n; (n = fread(buffer, 1, sizeof(buffer), pipe)) > 0;) out->append(buffer, n);
  const int status = pclose(pipe);
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

bool OnPath(const std::string& tool) {
  std::string out;
  return Capture("command -v " + tool, &out);
}

// The long options a binary's --help lists. `env` is put before the command.
std::set<std::string> HelpFlags(const std::string& binary, const std::string& env = "") {
  std::string help;
  Capture(env + " '" + binary + "' --help", &help);
  std::set<std::string> flags;
  static const std::regex kFlag(R"((^|[\s,\[])(--[a-zA-Z][a-zA-Z0-9-]*))");
  for (auto it = std::sregex_iterator(help.begin(), help.end(), kFlag);
       it != std::sregex_iterator(); ++it) {
    flags.insert((*it)[2]);
  }
  return flags;
}

std::string FlagName(const std::string& arg) { return arg.substr(0, arg.find('=')); }
std::string FlagValue(const std::string& arg) {
  const size_t eq = arg.find('=');
  return eq == std::string::npos ? "" : arg.substr(eq + 1);
}
int PortOf(const std::string& address) {
  int port = 0;
  const size_t colon = address.rfind(':');
  if (colon == std::string::npos || !absl::SimpleAtoi(address.substr(colon + 1), &port)) return -1;
  return port;
}

const std::map<std::string, std::string>& BinaryForImage() {
  static const auto* m = new std::map<std::string, std::string>{
      {"sparse-frontier/coordinator", SF_COORDINATOR_BIN},
      {"sparse-frontier/worker", SF_WORKER_BIN},
  };
  return *m;
}

// The apiVersion Kubernetes serves each kind the manifests use under.
const std::map<std::string, std::string>& ApiVersionOfKind() {
  static const auto* m = new std::map<std::string, std::string>{
      {"StatefulSet", "apps/v1"},
      {"Deployment", "apps/v1"},
      {"Job", "batch/v1"},
      {"Service", "v1"},
      {"PodDisruptionBudget", "policy/v1"},
  };
  return *m;
}

std::string ImageName(const std::string& image) {
  const size_t at = image.find('@');
  std::string name = image.substr(0, at);
  const size_t colon = name.rfind(':');
  if (colon != std::string::npos && name.find('/', colon) == std::string::npos) {
    name = name.substr(0, colon);
  }
  return name;
}

// Checks one Kubernetes object (a manifest document or a rendered object). `where`
// names it in failures. Collects the coordinator's ports and the workers' addresses into
// `ports` for the cross-object checks.
struct PortFacts {
  std::map<std::string, int> coordinator_container_ports;  // name -> port
  int listen_port = -1, health_listen_port = -1;
  std::vector<int> probe_ports;
  std::vector<std::string> worker_addresses;
  std::map<std::string, int> service_ports;  // Service name -> port (coordinator only)
  std::map<std::string, std::string> service_target_ports;
  std::vector<std::map<std::string, std::string>> pdb_selectors;
  std::vector<std::map<std::string, std::string>> pod_labels;
};

std::map<std::string, std::string> StringMap(const YAML::Node& node) {
  std::map<std::string, std::string> m;
  if (!node || !node.IsMap()) return m;
  for (const auto& kv : node) m[kv.first.as<std::string>()] = kv.second.as<std::string>();
  return m;
}

bool Contains(const std::map<std::string, std::string>& big,
              const std::map<std::string, std::string>& small) {
  for (const auto& [k, v] : small) {
    auto it = big.find(k);
    if (it == big.end() || it->second != v) return false;
  }
  return true;
}

void CheckContainer(const YAML::Node& c, const YAML::Node& pod, const YAML::Node& claims,
                    const std::string& where, bool init, PortFacts& facts) {
  ASSERT_TRUE(c["name"]) << where << ": container without name";
  ASSERT_TRUE(c["image"]) << where << ": container without image";
  const std::string name = c["name"].as<std::string>();
  const std::string at = absl::StrCat(where, " container ", name);
  const std::string image = ImageName(c["image"].as<std::string>());
  auto binary = BinaryForImage().find(image);
  ASSERT_NE(binary, BinaryForImage().end()) << at << ": unknown image " << image;
  const std::set<std::string> flags = HelpFlags(binary->second);
  ASSERT_FALSE(flags.empty()) << at << ": " << binary->second << " --help listed no flags";
  EXPECT_FALSE(c["command"]) << at << ": use args; the image's entrypoint is the binary";
  std::map<std::string, std::string> mounts;  // mountPath -> volume
  for (const auto& m : c["volumeMounts"]) {
    mounts[m["mountPath"].as<std::string>()] = m["name"].as<std::string>();
  }
  std::map<std::string, YAML::Node> volumes;
  for (const auto& v : pod["volumes"]) {
    volumes[v["name"].as<std::string>()] = static_cast<const YAML::Node&>(v);
  }
  std::set<std::string> claim_names;  // a StatefulSet's volumeClaimTemplates
  for (const auto& t : claims) claim_names.insert(t["metadata"]["name"].as<std::string>());
  for (const auto& mount : mounts) {
    EXPECT_TRUE(volumes.contains(mount.second) || claim_names.contains(mount.second))
        << at << ": mounts unknown volume " << mount.second;
  }
  for (const auto& a : c["args"]) {
    const std::string arg = a.as<std::string>();
    if (!absl::StartsWith(arg, "--")) continue;
    const std::string flag = FlagName(arg), value = FlagValue(arg);
    EXPECT_TRUE(flags.contains(flag))
        << at << ": " << flag << " is not in " << binary->second << " --help";
    // A file under a mount must be one the volume provides.
    if (absl::StartsWith(value, "/etc/sf/")) {
      const fs::path file(value);
      const std::string dir = file.parent_path().string();
      ASSERT_TRUE(mounts.contains(dir))
          << at << ": " << flag << "=" << value << " is under no mount";
      const YAML::Node secret = volumes[mounts[dir]]["secret"];
      ASSERT_TRUE(secret) << at << ": " << value << " is not in a Secret volume";
      if (secret["items"]) {
        bool found = false;
        for (const auto& item : secret["items"]) {
          found |= item["path"].as<std::string>() == file.filename().string();
        }
        EXPECT_TRUE(found) << at << ": Secret volume " << mounts[dir] << " has no item "
                           << file.filename();
      }
    }
    if (image == "sparse-frontier/coordinator" && flag == "--listen") {
      facts.listen_port = PortOf(value);
    }
    if (image == "sparse-frontier/coordinator" && flag == "--health-listen") {
      facts.health_listen_port = PortOf(value);
    }
    if (image == "sparse-frontier/worker" && flag == "--coordinator") {
      facts.worker_addresses.push_back(value);
    }
  }
  if (image == "sparse-frontier/coordinator") {
    for (const auto& p : c["ports"]) {
      facts.coordinator_container_ports[p["name"].as<std::string>()] = p["containerPort"].as<int>();
    }
    for (const char* probe : {"startupProbe", "readinessProbe", "livenessProbe"}) {
      ASSERT_TRUE(c[probe]) << at << ": no " << probe;
      ASSERT_TRUE(c[probe]["grpc"]) << at << ": " << probe << " is not a gRPC probe";
      facts.probe_ports.push_back(c[probe]["grpc"]["port"].as<int>());
    }
  }
  if (image == "sparse-frontier/worker" && !init) {
    ASSERT_TRUE(c["resources"]["limits"]["nvidia.com/gpu"]) << at << ": requests no nvidia.com/gpu";
    EXPECT_EQ(c["resources"]["limits"]["nvidia.com/gpu"].as<int>(), 1) << at;
  }
}

void CheckObject(const YAML::Node& doc, const std::string& where, PortFacts& facts) {
  ASSERT_TRUE(doc.IsMap()) << where << ": not a mapping";
  ASSERT_TRUE(doc["kind"]) << where << ": no kind";
  const std::string kind = doc["kind"].as<std::string>();
  if (doc["$patch"]) return;  // a strategic-merge delete patch names only its target
  auto api = ApiVersionOfKind().find(kind);
  ASSERT_NE(api, ApiVersionOfKind().end()) << where << ": unexpected kind " << kind;
  ASSERT_TRUE(doc["apiVersion"]) << where << ": no apiVersion";
  EXPECT_EQ(doc["apiVersion"].as<std::string>(), api->second) << where << " (" << kind << ")";
  ASSERT_TRUE(doc["metadata"]["name"]) << where << ": no metadata.name";
  const std::string at =
      absl::StrCat(where, " ", kind, "/", doc["metadata"]["name"].as<std::string>());
  const YAML::Node spec = doc["spec"];
  ASSERT_TRUE(spec) << at << ": no spec";
  if (kind == "Service") {
    const auto selector = StringMap(spec["selector"]);
    EXPECT_FALSE(selector.empty()) << at << ": no selector";
    for (const auto& p : spec["ports"]) {
      facts.service_ports[doc["metadata"]["name"].as<std::string>()] = p["port"].as<int>();
      facts.service_target_ports[doc["metadata"]["name"].as<std::string>()] =
          p["targetPort"].as<std::string>();
    }
    return;
  }
  if (kind == "PodDisruptionBudget") {
    EXPECT_TRUE(spec["minAvailable"] || spec["maxUnavailable"]) << at;
    facts.pdb_selectors.push_back(StringMap(spec["selector"]["matchLabels"]));
    return;
  }
  // Workloads: a pod template whose labels the selector (if any) matches.
  const YAML::Node pod = spec["template"]["spec"];
  ASSERT_TRUE(pod) << at << ": no spec.template.spec";
  const auto labels = StringMap(spec["template"]["metadata"]["labels"]);
  facts.pod_labels.push_back(labels);
  if (kind != "Job") {
    const auto selector = StringMap(spec["selector"]["matchLabels"]);
    ASSERT_FALSE(selector.empty()) << at << ": no selector.matchLabels";
    EXPECT_TRUE(Contains(labels, selector)) << at << ": selector does not match the pod labels";
  } else {
    EXPECT_EQ(spec["completionMode"].as<std::string>(""), "Indexed") << at;
    EXPECT_THAT(pod["restartPolicy"].as<std::string>(""), ::testing::AnyOf("OnFailure", "Never"))
        << at;
  }
  if (kind == "StatefulSet") {
    EXPECT_TRUE(spec["serviceName"]) << at;
    EXPECT_TRUE(spec["volumeClaimTemplates"]) << at << ": no persistent volume";
  }
  EXPECT_TRUE(pod["securityContext"]["runAsNonRoot"].as<bool>(false)) << at << ": may run as root";
  ASSERT_TRUE(pod["containers"] && pod["containers"].size() > 0) << at << ": no containers";
  const YAML::Node claims = spec["volumeClaimTemplates"];
  for (const auto& c : pod["initContainers"]) CheckContainer(c, pod, claims, at, true, facts);
  for (const auto& c : pod["containers"]) CheckContainer(c, pod, claims, at, false, facts);
}

// The cross-object checks on one set of objects (the base, or one rendered overlay).
void CheckPorts(const PortFacts& f, const std::string& where) {
  ASSERT_TRUE(f.coordinator_container_ports.contains("grpc")) << where;
  ASSERT_TRUE(f.coordinator_container_ports.contains("health")) << where;
  EXPECT_EQ(f.listen_port, f.coordinator_container_ports.at("grpc")) << where << ": --listen";
  EXPECT_EQ(f.health_listen_port, f.coordinator_container_ports.at("health"))
      << where << ": --health-listen";
  for (int p : f.probe_ports) EXPECT_EQ(p, f.health_listen_port) << where << ": probe port";
  ASSERT_TRUE(f.service_ports.contains("sf-coordinator")) << where << ": no Service sf-coordinator";
  EXPECT_TRUE(f.coordinator_container_ports.contains(f.service_target_ports.at("sf-coordinator")))
      << where << ": Service targetPort names no container port";
  EXPECT_FALSE(f.worker_addresses.empty()) << where;
  for (const std::string& a : f.worker_addresses) {
    EXPECT_EQ(a, absl::StrCat("sf-coordinator:", f.service_ports.at("sf-coordinator")))
        << where << ": workers' --coordinator";
  }
  for (const auto& selector : f.pdb_selectors) {
    bool matched = false;
    for (const auto& labels : f.pod_labels) matched |= Contains(labels, selector);
    EXPECT_TRUE(matched) << where << ": a PodDisruptionBudget selects no pod";
  }
}

std::vector<fs::path> YamlFiles(const fs::path& dir) {
  std::vector<fs::path> files;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (e.path().extension() == ".yaml") files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  return files;
}

TEST(K8sManifestsTest, EveryFileParsesAndKustomizationsNameExistingFiles) {
  const std::vector<fs::path> files = YamlFiles(Source("deploy/k8s"));
  ASSERT_GE(files.size(), 10u);
  for (const fs::path& file : files) {
    std::vector<YAML::Node> docs;
    ASSERT_NO_THROW(docs = YAML::LoadAllFromFile(file.string())) << file;
    ASSERT_FALSE(docs.empty()) << file;
    if (file.filename() != "kustomization.yaml") continue;
    const YAML::Node k = docs[0];
    const std::string kind = k["kind"].as<std::string>("");
    EXPECT_THAT(kind, ::testing::AnyOf("Kustomization", "Component")) << file;
    EXPECT_EQ(k["apiVersion"].as<std::string>(""), kind == "Component"
                                                       ? "kustomize.config.k8s.io/v1alpha1"
                                                       : "kustomize.config.k8s.io/v1beta1")
        << file;
    for (const char* list : {"resources", "components"}) {
      for (const auto& r : k[list]) {
        EXPECT_TRUE(fs::exists(file.parent_path() / r.as<std::string>())) << file << ": " << r;
      }
    }
    for (const auto& p : k["patches"]) {
      if (p["path"]) {
        EXPECT_TRUE(fs::exists(file.parent_path() / p["path"].as<std::string>())) << file;
      }
      if (p["patch"]) {
        YAML::Node ops;
        ASSERT_NO_THROW(ops = YAML::Load(p["patch"].as<std::string>())) << file;
        ASSERT_TRUE(ops.IsSequence()) << file << ": inline patches are JSON 6902 op lists";
        for (const auto& op : ops) {
          EXPECT_TRUE(op["op"] && op["path"]) << file << ": patch op needs op and path";
        }
      }
    }
  }
}

TEST(K8sManifestsTest, BaseAndComponentObjects_FlagsPortsKindsAgree) {
  PortFacts facts;
  for (const fs::path& file : YamlFiles(Source("deploy/k8s/base"))) {
    if (file.filename() == "kustomization.yaml") continue;
    for (const YAML::Node& doc : YAML::LoadAllFromFile(file.string())) {
      CheckObject(doc, file.filename().string(), facts);
    }
  }
  CheckPorts(facts, "base");
  PortFacts job;
  job.service_ports = facts.service_ports;
  job.service_target_ports = facts.service_target_ports;
  job.coordinator_container_ports = facts.coordinator_container_ports;
  job.listen_port = facts.listen_port;
  job.health_listen_port = facts.health_listen_port;
  for (const fs::path& file : YamlFiles(Source("deploy/k8s/components/indexed-job"))) {
    if (file.filename() == "kustomization.yaml") continue;
    for (const YAML::Node& doc : YAML::LoadAllFromFile(file.string())) {
      CheckObject(doc, file.filename().string(), job);
    }
  }
  ASSERT_EQ(job.worker_addresses.size(), 2u);  // the init container's and the worker's
  for (const std::string& a : job.worker_addresses) EXPECT_EQ(a, facts.worker_addresses.at(0));
}

// JSON 6902 patches that replace one argument by index must hit the same flag.
TEST(K8sManifestsTest, OverlayArgPatches_ReplaceTheSameFlag) {
  YAML::Node coordinator =
      YAML::LoadFile(Source("deploy/k8s/base/coordinator-statefulset.yaml").string());
  const YAML::Node args = coordinator["spec"]["template"]["spec"]["containers"][0]["args"];
  static const std::regex kArgPath(R"(/spec/template/spec/containers/0/args/(\d+))");
  int checked = 0;
  for (const fs::path& file : YamlFiles(Source("deploy/k8s/overlays"))) {
    for (const auto& p : YAML::LoadFile(file.string())["patches"]) {
      if (!p["patch"] || p["target"]["name"].as<std::string>("") != "sf-coordinator") continue;
      for (const auto& op : YAML::Load(p["patch"].as<std::string>())) {
        std::smatch m;
        const std::string path = op["path"].as<std::string>();
        if (!std::regex_match(path, m, kArgPath)) continue;
        const size_t index = std::stoul(m[1]);
        ASSERT_LT(index, args.size()) << file << ": " << path;
        EXPECT_EQ(FlagName(op["value"].as<std::string>()), FlagName(args[index].as<std::string>()))
            << file << ": " << path;
        ++checked;
      }
    }
  }
  EXPECT_GT(checked, 0);
}

TEST(K8sManifestsTest, OverlaysRenderWithKustomize) {
  if (!OnPath("kubectl")) {
    GTEST_SKIP() << "kubectl not installed: overlays not rendered (the other tests check "
                    "the files they are made of)";
  }
  for (const std::string overlay : {"small", "large"}) {
    std::string rendered;
    ASSERT_TRUE(Capture(
        "kubectl kustomize '" + Source("deploy/k8s/overlays/" + overlay).string() + "'", &rendered))
        << overlay << ": " << rendered;
    PortFacts facts;
    std::set<std::string> kinds;
    for (const YAML::Node& doc : YAML::LoadAll(rendered)) {
      kinds.insert(doc["kind"].as<std::string>());
      EXPECT_EQ(doc["metadata"]["namespace"].as<std::string>(""), "sparse-frontier") << overlay;
      CheckObject(doc, overlay, facts);
    }
    CheckPorts(facts, overlay);
    EXPECT_TRUE(kinds.contains(overlay == "small" ? "Deployment" : "Job")) << overlay;
    EXPECT_FALSE(kinds.contains(overlay == "small" ? "Job" : "Deployment")) << overlay;
  }
}

// ---------------------------------------------------------------- Slurm scripts

// The long options on the lines of a shell script that `select` picks; here-documents
// (text the script prints) are skipped.
std::set<std::string> ScriptFlags(const std::string& text,
                                  const std::function<bool(absl::string_view)>& select) {
  std::set<std::string> flags;
  static const std::regex kFlag(R"((^|[\s(=])(--[a-z][a-z0-9-]*))");
  static const std::regex kHereDoc(R"(<<-?'?([A-Z_]+)'?)");
  std::string here_doc_end;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (!here_doc_end.empty()) {
      if (absl::StripAsciiWhitespace(line) == here_doc_end) here_doc_end.clear();
      continue;
    }
    std::smatch here;
    const std::string whole(line);
    if (std::regex_search(whole, here, kHereDoc)) here_doc_end = here[1];
    if (!select(line)) continue;
    const std::string l(line);
    for (auto it = std::sregex_iterator(l.begin(), l.end(), kFlag); it != std::sregex_iterator();
         ++it) {
      flags.insert((*it)[2]);
    }
  }
  return flags;
}

bool IsComment(absl::string_view line) {
  return absl::StartsWith(absl::StripLeadingAsciiWhitespace(line), "#");
}

TEST(SlurmScriptsTest, CoordinatorScript_FlagsInSfCoordinatorHelp) {
  const std::string text = ReadFile(Source("deploy/slurm/sf-coordinator.sh"));
  const std::set<std::string> help = HelpFlags(SF_COORDINATOR_BIN);
  const auto flags = ScriptFlags(text, [](absl::string_view l) { return !IsComment(l); });
  EXPECT_GE(flags.size(), 6u);
  for (const std::string& f : flags) EXPECT_TRUE(help.contains(f)) << f;
}

TEST(SlurmScriptsTest, WorkerScripts_FlagsInSfWorkerSrunAndSbatchHelp) {
  const std::set<std::string> worker = HelpFlags(SF_WORKER_BIN);
  const bool slurm = OnPath("srun") && OnPath("sbatch");
  // srun and sbatch read a configuration before they print their help.
  const fs::path conf = fs::temp_directory_path() / absl::StrCat("sf-deploy-test-", getpid());
  fs::create_directories(conf);
  std::ofstream(conf / "slurm.conf") << "ClusterName=help\nSlurmctldHost=localhost\n";
  const std::string env = absl::StrCat("SLURM_CONF='", (conf / "slurm.conf").string(), "'");
  const std::set<std::string> srun = slurm ? HelpFlags("srun", env) : std::set<std::string>();
  std::set<std::string> sbatch = slurm ? HelpFlags("sbatch", env) : std::set<std::string>();
  sbatch.insert("--open-mode");  // documented in sbatch(1) but not in sbatch --help
  fs::remove_all(conf);
  if (slurm) {
    ASSERT_TRUE(srun.contains("--ntasks")) << "srun --help listed no flags";
    ASSERT_TRUE(sbatch.contains("--array")) << "sbatch --help listed no flags";
  }
  for (const std::string script : {"sf-workers.sbatch", "sf-workers-array.sbatch"}) {
    const std::string text = ReadFile(Source("deploy/slurm/" + script));
    const auto worker_flags = ScriptFlags(
        text, [](absl::string_view l) { return !IsComment(l) && !absl::StrContains(l, "srun "); });
    EXPECT_GE(worker_flags.size(), 7u) << script;
    for (const std::string& f : worker_flags)
      EXPECT_TRUE(worker.contains(f)) << script << ": " << f;
    if (!slurm) continue;  // deploy/install-deps.sh installs slurm-client
    for (const std::string& f : ScriptFlags(text, [](absl::string_view l) {
           return !IsComment(l) && absl::StrContains(l, "srun ");
         })) {
      EXPECT_TRUE(srun.contains(f)) << script << ": srun " << f;
    }
    const auto directives =
        ScriptFlags(text, [](absl::string_view l) { return absl::StartsWith(l, "#SBATCH"); });
    EXPECT_TRUE(directives.contains("--requeue")) << script;
    EXPECT_TRUE(directives.contains("--signal")) << script;
    for (const std::string& f : directives) EXPECT_TRUE(sbatch.contains(f)) << script << ": " << f;
  }
}

TEST(SlurmScriptsTest, ArrayVariant_SharesTheBodyVerbatim) {
  auto body = [](const std::string& text) {
    const size_t at = text.find("# ---- common body");
    return at == std::string::npos ? std::string() : text.substr(at);
  };
  const std::string plain = body(ReadFile(Source("deploy/slurm/sf-workers.sbatch")));
  ASSERT_FALSE(plain.empty());
  EXPECT_EQ(plain, body(ReadFile(Source("deploy/slurm/sf-workers-array.sbatch"))));
}

// ---------------------------------------------------------------- Dockerfiles

struct Stage {
  std::string base, name;
  std::vector<std::string> lines;
};

std::vector<Stage> ParseDockerfile(const std::string& text,
                                   std::map<std::string, std::string>* args) {
  std::vector<Stage> stages;
  std::string logical;
  for (absl::string_view raw : absl::StrSplit(text, '\n')) {
    absl::string_view line = absl::StripTrailingAsciiWhitespace(raw);
    if (logical.empty() && IsComment(line)) continue;
    if (absl::ConsumeSuffix(&line, "\\")) {
      absl::StrAppend(&logical, line, " ");
      continue;
    }
    absl::StrAppend(&logical, line);
    const std::string l = std::string(absl::StripAsciiWhitespace(logical));
    logical.clear();
    if (l.empty()) continue;
    std::vector<std::string> words = absl::StrSplit(l, ' ', absl::SkipEmpty());
    if (words[0] == "ARG" && stages.empty()) {
      std::vector<std::string> kv = absl::StrSplit(words[1], absl::MaxSplits('=', 1));
      (*args)[kv[0]] = kv.size() > 1 ? kv[1] : "";
    }
    if (words[0] == "FROM") {
      Stage s;
      s.base = words[1];
      if (absl::StartsWith(s.base, "${")) s.base = (*args)[s.base.substr(2, s.base.size() - 3)];
      if (words.size() >= 4 && words[2] == "AS") s.name = words[3];
      stages.push_back(s);
      continue;
    }
    if (!stages.empty()) stages.back().lines.push_back(l);
  }
  return stages;
}

void CheckDockerfile(const std::string& file, const std::string& binary,
                     const std::string& base_must_contain, const std::string& cmake_target) {
  std::map<std::string, std::string> args;
  const std::vector<Stage> stages = ParseDockerfile(ReadFile(Source(file)), &args);
  ASSERT_GE(stages.size(), 2u) << file << ": not multi-stage";
  std::set<std::string> names;
  for (const Stage& s : stages) {
    for (const std::string& l : s.lines) {
      std::smatch m;
      if (std::regex_search(l, m, std::regex(R"(COPY --from=(\S+))"))) {
        EXPECT_TRUE(names.contains(m[1])) << file << ": COPY from unknown stage " << m[1];
      }
    }
    names.insert(s.name);
  }
  const Stage& final_stage = stages.back();
  EXPECT_THAT(final_stage.base, ::testing::HasSubstr(base_must_contain)) << file;
  std::string user, entrypoint;
  std::set<int> exposed;
  for (const std::string& l : final_stage.lines) {
    if (absl::StartsWith(l, "USER ")) user = l.substr(5);
    if (absl::StartsWith(l, "ENTRYPOINT ")) entrypoint = l;
    if (absl::StartsWith(l, "CMD ")) {
      // CMD's flags go to the entrypoint binary.
      const std::set<std::string> help = HelpFlags(binary);
      for (const auto& f : ScriptFlags(l, [](absl::string_view) { return true; })) {
        EXPECT_TRUE(help.contains(f)) << file << ": CMD " << f;
      }
    }
  }
  EXPECT_FALSE(user.empty()) << file << ": the final stage runs as root";
  EXPECT_NE(user, "root");
  EXPECT_NE(user, "0");
  const std::string name = fs::path(binary).filename().string();
  EXPECT_THAT(entrypoint, ::testing::HasSubstr("/usr/local/bin/" + name)) << file;
  // The build stage builds the target and copies the binary from where CMake puts it.
  const std::string build_dir_path =
      fs::path(binary).parent_path().filename().string() + "/" + name;
  bool builds = false, copies = false;
  for (const std::string& l : stages.front().lines) {
    builds |= absl::StrContains(l, "--target") && absl::StrContains(l, cmake_target);
    copies |= absl::StrContains(l, "/build/" + build_dir_path);
  }
  EXPECT_TRUE(builds) << file << ": does not build " << cmake_target;
  EXPECT_TRUE(copies) << file << ": does not copy /build/" << build_dir_path;
}

TEST(DockerfilesTest, Coordinator_MultiStageNonRootOnDebianSlim) {
  CheckDockerfile("deploy/docker/coordinator.Dockerfile", SF_COORDINATOR_BIN,
                  "debian:bookworm-slim", "sf_coordinator_main");
  // It exposes the ports the manifests use.
  const std::string text = ReadFile(Source("deploy/docker/coordinator.Dockerfile"));
  EXPECT_THAT(text, ::testing::HasSubstr("EXPOSE 50051 50052"));
}

TEST(DockerfilesTest, Worker_MultiStageNonRootOnCudaRuntime) {
  CheckDockerfile("deploy/docker/worker.Dockerfile", SF_WORKER_BIN, "nvidia/cuda:", "sf-worker");
  std::map<std::string, std::string> args;
  const auto stages = ParseDockerfile(ReadFile(Source("deploy/docker/worker.Dockerfile")), &args);
  EXPECT_THAT(stages.back().base, ::testing::HasSubstr("-runtime-"));
}

}  // namespace
}  // namespace sf
