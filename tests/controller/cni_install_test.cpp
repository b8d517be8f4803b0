#include "nftpol/controller/cni_install.h"

#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <cerrno>
#include <deque>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "nftpol/json_value.h"

using namespace nftpol;
using namespace nftpol::controller;
namespace fs = std::filesystem;

namespace {

std::vector<Cidr> cidrs(std::initializer_list<const char*> texts) {
  std::vector<Cidr> out;
  for (const char* text : texts)
    out.push_back(*Cidr::parse(text));
  return out;
}

std::string subnetsOf(const std::string& conflist) {
  auto root = json::parse(conflist);
  REQUIRE(root);
  std::string out;
  for (const auto& plugin : root->find("plugins")->asArray()) {
    const json::Value* ranges = plugin.find("ipam") ? plugin.find("ipam")->find("ranges") : nullptr;
    if (!ranges) continue;
    for (const auto& set : ranges->asArray())
      for (const auto& range : set.asArray())
        out += (out.empty() ? "" : " ") + range.find("subnet")->asString();
  }
  return out;
}

const char* kTemplate = R"({
  "cniVersion": "1.1.0", "name": "nftpol",
  "plugins": [
    {"type": "nftpol-bridge", "bridge": "cni0", "isDefaultGateway": true,
     "ipam": {"type": "host-local", "dataDir": "/var/lib/cni/networks",
              "ranges": [[{"subnet": "192.0.2.0/24"}]]}},
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
})";

// Answers from a script, one per request, the last one repeated; records the targets asked for.
class ScriptedClient : public ApiClient {
 public:
  explicit ScriptedClient(std::deque<Result<Response>> answers) : answers_(std::move(answers)) {}
  Result<Response> get(const std::string& target) override {
    targets.push_back(target);
    Result<Response> answer = answers_.front();
    if (answers_.size() > 1) answers_.pop_front();
    return answer;
  }
  Result<Response> stream(const std::string&, const std::function<bool(std::string_view)>&) override {
    return Error{"not scripted"};
  }
  void cancel() override {}
  std::vector<std::string> targets;

 private:
  std::deque<Result<Response>> answers_;
};

ApiClient::Response node(const std::string& spec) {
  return {200, R"({"kind":"Node","apiVersion":"v1","metadata":{"name":"n1"},"spec":)" + spec + "}"};
}

struct TempDir {
  fs::path path;
  TempDir() {
    char name[] = "/tmp/nftpol-install.XXXXXX";
    path = mkdtemp(name);
  }
  ~TempDir() { fs::remove_all(path); }
  std::string read(const std::string& name) const {
    std::ifstream in(path / name);
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
  }
};

}  // namespace

TEST_CASE("a node's pod subnets come from spec.podCIDRs, else spec.podCIDR") {
  auto dual =
      podCidrsOfNode(R"({"spec":{"podCIDR":"10.244.1.0/24","podCIDRs":["10.244.1.0/24","fd00:1::/64"]}})");
  REQUIRE(dual);
  CHECK(*dual == cidrs({"10.244.1.0/24", "fd00:1::/64"}));
  auto single = podCidrsOfNode(R"({"spec":{"podCIDR":"10.244.7.0/24"}})");
  REQUIRE(single);
  CHECK(*single == cidrs({"10.244.7.0/24"}));
  auto none = podCidrsOfNode(R"({"spec":{"providerID":"x"}})");
  REQUIRE(none);
  CHECK(none->empty());
  auto bad = podCidrsOfNode(R"({"spec":{"podCIDR":"10.244.1.0/33"}})");
  REQUIRE_FALSE(bad);
  CHECK_THAT(bad.error().message, Catch::Contains("10.244.1.0/33"));
  CHECK_FALSE(podCidrsOfNode("{not json"));
}

TEST_CASE("the template's host-local ranges become the node's subnets, one range set per family") {
  auto out = renderCniConfig(kTemplate, "t.conflist", cidrs({"10.244.3.0/24", "fd00:3::/64"}));
  REQUIRE(out);
  CHECK(subnetsOf(*out) == "10.244.3.0/24 fd00:3::/64");  // the template's own range is replaced
  auto root = json::parse(*out);
  REQUIRE(root);
  const auto& plugins = root->find("plugins")->asArray();
  REQUIRE(plugins.size() == 2);  // the other plugin of the chain is kept as it is
  CHECK(plugins[1].find("type")->asString() == "portmap");
  CHECK(plugins[0].find("ipam")->find("dataDir")->asString() == "/var/lib/cni/networks");
  CHECK(json::parse(*out)->find("plugins")->asArray()[0].find("ipam")->find("ranges")->asArray().size() == 2);

  // A single network configuration (a .conf) works the same way.
  auto single = renderCniConfig(
      R"({"cniVersion":"1.0.0","name":"n","type":"nftpol-bridge","ipam":{"type":"host-local"}})", "t.conf",
      cidrs({"10.244.4.0/24"}));
  REQUIRE(single);
  CHECK(single->find("10.244.4.0/24") != std::string::npos);
}

TEST_CASE("a template that cannot make a working network config is refused, saying where and what") {
  auto subnets = cidrs({"10.244.3.0/24"});
  auto error = [&](const std::string& text) {
    auto out = renderCniConfig(text, "tmpl.conflist", subnets);
    REQUIRE_FALSE(out);
    CHECK_THAT(out.error().message, Catch::StartsWith("tmpl.conflist: "));
    return out.error().message;
  };
  CHECK_THAT(error(R"({"cniVersion": "1.1.0", "name": )"), Catch::Contains("not JSON: at byte"));
  CHECK_THAT(error(R"([1])"), Catch::Contains("JSON object"));
  CHECK_THAT(error(R"({"name":"n","plugins":[]})"), Catch::Contains("cniVersion"));
  CHECK_THAT(error(R"({"cniVersion":"1.1.0","name":"n","plugins":{}})"),
             Catch::Contains("\"plugins\" must be a list"));
  CHECK_THAT(
      error(
          R"({"cniVersion":"1.1.0","name":"n","plugins":[{"type":"nftpol-bridge","ipam":{"type":"dhcp"}}]})"),
      Catch::Contains("no plugin with a host-local"));
  // What the plugin itself would refuse at the first pod: the runtime's view of it is checked now.
  CHECK_THAT(error(R"({"cniVersion":"1.1.0","name":"n","plugins":[{"type":"nftpol-bridge","mtu":"big",)"
                   R"("ipam":{"type":"host-local"}}]})"),
             Catch::Contains("plugin 1 (nftpol-bridge)"));
  CHECK_THAT(error(R"({"cniVersion":"0.3.1","name":"n","plugins":[{"type":"nftpol-bridge",)"
                   R"("ipam":{"type":"host-local"}}]})"),
             Catch::Contains("0.3.1"));
  auto none = renderCniConfig(kTemplate, "t", {});
  REQUIRE_FALSE(none);
  CHECK_THAT(none.error().message, Catch::Contains("no pod subnet"));
}

TEST_CASE("waiting for the pod subnets: a missing node and a node without podCIDR are waited for") {
  ScriptedClient api({ApiClient::Response{404, "{}"}, Error{"connection refused"}, node(R"({})"),
                      node(R"({"podCIDR":"10.244.9.0/24"})")});
  std::vector<std::string> heard;
  auto got = waitForPodCidrs(api, "n1", std::chrono::seconds{10},
                             [&](const std::string& why) { heard.push_back(why); });
  REQUIRE(got);
  CHECK(*got == cidrs({"10.244.9.0/24"}));
  CHECK(api.targets == std::vector<std::string>(4, "/api/v1/nodes/n1"));
  REQUIRE(heard.size() == 3);
  CHECK_THAT(heard[0], Catch::Contains("does not exist"));
  CHECK_THAT(heard[1], Catch::Contains("connection refused"));
  CHECK_THAT(heard[2], Catch::Contains("no spec.podCIDR yet"));
}

TEST_CASE("waiting for the pod subnets ends at the timeout, and at once on refused credentials") {
  ScriptedClient empty({node(R"({})")});
  auto start = std::chrono::steady_clock::now();
  auto late = waitForPodCidrs(empty, "n1", std::chrono::milliseconds{700}, [](const std::string&) {});
  auto took = std::chrono::steady_clock::now() - start;
  REQUIRE_FALSE(late);
  CHECK_THAT(late.error().message, Catch::Contains("no spec.podCIDR yet"));
  CHECK(took >= std::chrono::milliseconds{700});
  CHECK(took < std::chrono::milliseconds{3000});

  ScriptedClient refused({ApiClient::Response{401, "Unauthorized"}});
  auto denied = waitForPodCidrs(refused, "n1", std::chrono::seconds{30}, [](const std::string&) {});
  REQUIRE_FALSE(denied);
  CHECK_THAT(denied.error().message, Catch::Contains("HTTP 401"));
  CHECK(refused.targets.size() == 1);
}

TEST_CASE("a file is installed whole with its mode, and a failure leaves nothing behind") {
  TempDir dir;
  REQUIRE_FALSE(installFile(dir.path, "plugin", "#!/bin/sh\n", 0755));
  CHECK(dir.read("plugin") == "#!/bin/sh\n");
  struct stat st {};
  REQUIRE(::stat((dir.path / "plugin").c_str(), &st) == 0);
  CHECK((st.st_mode & 07777) == 0755);
  REQUIRE_FALSE(installFile(dir.path, "plugin", "v2", 0644));  // replaces
  CHECK(dir.read("plugin") == "v2");
  CHECK(std::distance(fs::directory_iterator(dir.path), fs::directory_iterator()) == 1);

  auto failed = installFile((dir.path / "missing").string(), "x.conflist", "{}", 0644);
  REQUIRE(failed);
  CHECK_THAT(failed->message, Catch::Contains("missing/.x.conflist.nftpol-tmp"));
  fs::create_directory(dir.path / "target.conflist");  // rename cannot replace a directory
  auto blocked = installFile(dir.path, "target.conflist", "{}", 0644);
  REQUIRE(blocked);
  CHECK(std::distance(fs::directory_iterator(dir.path), fs::directory_iterator()) == 2);  // no temporary left
}

TEST_CASE("install-cni reads everything first, then installs the plugins before the config") {
  TempDir dir;
  fs::create_directories(dir.path / "bin");
  fs::create_directories(dir.path / "net.d");
  fs::create_directories(dir.path / "src");
  std::ofstream(dir.path / "src" / "10-nftpol.conflist") << "{}";
  std::ofstream(dir.path / "src" / "nftpol-bridge") << "#!/bin/sh\n";
  const std::string src = (dir.path / "src").string();

  auto missing =
      readCniInstallInputs(src + "/10-nftpol.conflist", true, {src + "/nftpol-bridge", src + "/gone"});
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.error().message == "plugin " + src + "/gone: No such file or directory");
  CHECK(missing.error().errnum == ENOENT);
  auto noTemplate = readCniInstallInputs(src + "/none.conflist", false, {});
  REQUIRE_FALSE(noTemplate.ok());
  CHECK(noTemplate.error().errnum == ENOENT);

  auto inputs = readCniInstallInputs(src + "/10-nftpol.conflist", true, {src + "/nftpol-bridge"});
  REQUIRE(inputs.ok());
  REQUIRE(inputs->plugins.size() == 1);
  CHECK(inputs->plugins[0].first == "nftpol-bridge");
  auto written = installCni(*inputs, "{\"rendered\":true}", (dir.path / "bin").string(),
                            (dir.path / "net.d").string(), "");
  REQUIRE(written.ok());
  CHECK(*written == std::vector<std::string>{(dir.path / "bin" / "nftpol-bridge").string(),
                                             (dir.path / "net.d" / "10-nftpol.conflist").string()});
  CHECK(dir.read("net.d/10-nftpol.conflist") == "{\"rendered\":true}");
  CHECK(dir.read("bin/nftpol-bridge") == "#!/bin/sh\n");

  // A plugin that cannot be installed: the config, which would name it, is not written.
  fs::remove_all(dir.path / "net.d");
  fs::create_directories(dir.path / "net.d");
  auto blocked =
      installCni(*inputs, "{}", (dir.path / "nowhere").string(), (dir.path / "net.d").string(), "x");
  REQUIRE_FALSE(blocked.ok());
  CHECK(fs::is_empty(dir.path / "net.d"));
}
