#include <catch2/catch.hpp>
#include <map>

#include "nftpol/cni/config.h"
#include "nftpol/cni/environment.h"

using namespace nftpol::cni;

namespace {

std::string conf(const std::string& extra) {
  return R"({"cniVersion": "1.1.0", "name": "pods", "type": "nftpol-bridge", "ipam": {"type": "host-local"})" +
         extra + "}";
}

Outcome<Environment> environment(std::map<std::string, std::string> vars) {
  return readEnvironment([&](const char* name) -> std::optional<std::string> {
    auto it = vars.find(name);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  });
}

const std::map<std::string, std::string> kAdd = {{"CNI_COMMAND", "ADD"},
                                                 {"CNI_CONTAINERID", "c0ffee-1"},
                                                 {"CNI_NETNS", "/var/run/netns/pod"},
                                                 {"CNI_IFNAME", "eth0"},
                                                 {"CNI_PATH", "/opt/cni/bin:/usr/lib/cni"}};

}  // namespace

TEST_CASE("a bridge network config with its defaults, and the reference bridge plugin's fields", "[cni]") {
  auto c = parseConfig(conf(""));
  REQUIRE(c.ok());
  CHECK(c->cniVersion == "1.1.0");
  CHECK(c->name == "pods");
  CHECK(c->bridge == "cni0");
  CHECK_FALSE(c->isGateway);
  CHECK(c->mtu == 0);
  CHECK(c->ipamType == "host-local");
  CHECK_FALSE(c->prevResult);

  auto full = parseConfig(conf(R"(, "bridge": "nftpol0", "isDefaultGateway": true, "ipMasq": true,
      "hairpinMode": true, "mtu": 1400, "prevResult": {"cniVersion": "1.1.0", "ips": []}, "unknownField": 1)"));
  REQUIRE(full.ok());
  CHECK(full->bridge == "nftpol0");
  CHECK(full->isGateway);  // a default route needs the gateway on the bridge
  CHECK(full->isDefaultGateway);
  CHECK(full->ipMasq);
  CHECK(full->hairpinMode);
  CHECK(full->mtu == 1400);
  REQUIRE(full->prevResult);
  CHECK(full->prevResult->find("\"ips\"") != std::string::npos);
}

TEST_CASE("GC's valid attachments and host-local's data directory", "[cni]") {
  auto c = parseConfig(conf(""));
  REQUIRE(c.ok());
  CHECK_FALSE(c->validAttachments);  // absent is not empty: GC refuses rather than release everything
  CHECK(c->hostLocalDataDir == "/var/lib/cni/networks");

  auto gc = parseConfig(
      R"({"cniVersion": "1.1.0", "name": "pods", "type": "nftpol-bridge",
          "ipam": {"type": "host-local", "dataDir": "/run/ipam"},
          "cni.dev/valid-attachments": [{"containerID": "a1", "ifname": "eth0"}, {"containerID": "b2", "ifname": "net1"}]})");
  REQUIRE(gc.ok());
  CHECK(gc->hostLocalDataDir == "/run/ipam");
  REQUIRE(gc->validAttachments);
  CHECK(*gc->validAttachments == std::vector<Attachment>{{"a1", "eth0"}, {"b2", "net1"}});
  auto none = parseConfig(conf(R"(, "cni.dev/valid-attachments": [])"));
  REQUIRE(none.ok());
  REQUIRE(none->validAttachments);
  CHECK(none->validAttachments->empty());
}

TEST_CASE("bad network configs are refused with the spec's codes", "[cni]") {
  struct Case {
    std::string json;
    Code code;
    std::string msg;
  };
  const Case cases[] = {
      {"{\"cniVersion\": ", Code::kDecodingFailure, "the network configuration is not JSON"},
      {"[1]", Code::kDecodingFailure, "the network configuration must be a JSON object"},
      {R"({"name": "pods", "type": "nftpol-bridge", "ipam": {"type": "host-local"}})", Code::kInvalidConfig,
       "\"cniVersion\" is required"},
      {R"({"cniVersion": "0.3.1", "name": "pods", "type": "x", "ipam": {"type": "host-local"}})",
       Code::kIncompatibleVersion, "incompatible CNI version \"0.3.1\""},
      {R"({"cniVersion": "1.0.0", "type": "x", "ipam": {"type": "host-local"}})", Code::kInvalidConfig,
       "\"name\" is required"},
      {R"({"cniVersion": "1.0.0", "name": "-pods", "type": "x", "ipam": {"type": "host-local"}})",
       Code::kInvalidConfig, "invalid network name \"-pods\""},
      {conf(R"(, "bridge": "a-name-far-too-long")"), Code::kInvalidConfig,
       "invalid bridge name \"a-name-far-too-long\""},
      {conf(R"(, "isGateway": "yes")"), Code::kInvalidConfig, "\"isGateway\" must be true or false"},
      {conf(R"(, "mtu": 20)"), Code::kInvalidConfig, "\"mtu\" 20 is out of range"},
      {conf(R"(, "mtu": "1500")"), Code::kInvalidConfig, "\"mtu\" must be an integer"},
      {R"({"cniVersion": "1.0.0", "name": "pods", "type": "x"})", Code::kInvalidConfig,
       "\"ipam\" is required"},
      {R"({"cniVersion": "1.0.0", "name": "pods", "type": "x", "ipam": {"type": "../../bin/sh"}})",
       Code::kInvalidConfig, "invalid \"ipam.type\" \"../../bin/sh\""},
      {conf(R"(, "cni.dev/valid-attachments": {})"), Code::kInvalidConfig,
       "\"cni.dev/valid-attachments\" must be an array"},
      {conf(R"(, "cni.dev/valid-attachments": [{"containerID": "a1"}])"), Code::kInvalidConfig,
       "every entry of \"cni.dev/valid-attachments\" needs \"containerID\" and \"ifname\""},
      {R"({"cniVersion": "1.0.0", "name": "pods", "type": "x", "ipam": {"type": "host-local", "dataDir": 1}})",
       Code::kInvalidConfig, "\"ipam.dataDir\" must be a directory"},
  };
  for (const auto& c : cases) {
    INFO(c.json);
    auto parsed = parseConfig(c.json);
    REQUIRE_FALSE(parsed.ok());
    CHECK(parsed.error().code == c.code);
    CHECK(parsed.error().msg == c.msg);
  }
}

TEST_CASE("errors and VERSION are printed as the spec's JSON objects", "[cni]") {
  CHECK(toJson(Failure{Code::kInvalidConfig, "bad \"mtu\"", "line\nbreak"}, "1.1.0") ==
        R"({"cniVersion": "1.1.0", "code": 7, "msg": "bad \"mtu\"", "details": "line\nbreak"})");
  CHECK(toJson(Failure{Code::kTryAgainLater, "busy", ""}, "1.0.0") ==
        R"({"cniVersion": "1.0.0", "code": 11, "msg": "busy"})");
  CHECK(versionJson() == R"({"cniVersion": "1.1.0", "supportedVersions": ["1.0.0", "1.1.0"]})");
}

TEST_CASE("the CNI_* variables are read and checked per command", "[cni]") {
  auto add = environment(kAdd);
  REQUIRE(add.ok());
  CHECK(add->command == Command::kAdd);
  CHECK(add->containerId == "c0ffee-1");
  CHECK(add->ifname == "eth0");
  CHECK(add->path == std::vector<std::string>{"/opt/cni/bin", "/usr/lib/cni"});

  auto version = environment({{"CNI_COMMAND", "VERSION"}});
  REQUIRE(version.ok());
  CHECK(version->command == Command::kVersion);

  auto del = kAdd;
  del["CNI_COMMAND"] = "DEL";
  del.erase("CNI_NETNS");  // the runtime may have lost the namespace already
  CHECK(environment(del).ok());

  auto withArgs = kAdd;
  withArgs["CNI_ARGS"] = "K8S_POD_NAMESPACE=web;K8S_POD_NAME=api-0;IgnoreUnknown=1";
  auto parsed = environment(withArgs);
  REQUIRE(parsed.ok());
  REQUIRE(parsed->args.size() == 3);
  CHECK(parsed->args[1] == std::pair<std::string, std::string>{"K8S_POD_NAME", "api-0"});

  struct Case {
    std::string variable, value, msg;
  };
  const Case bad[] = {
      {"CNI_COMMAND", "", "CNI_COMMAND is not set"},
      {"CNI_COMMAND", "REMOVE", "unknown CNI_COMMAND \"REMOVE\""},
      {"CNI_CONTAINERID", "", "CNI_CONTAINERID is not set"},
      {"CNI_CONTAINERID", "a/b", "invalid CNI_CONTAINERID \"a/b\""},
      {"CNI_IFNAME", "eth0:1", "invalid CNI_IFNAME \"eth0:1\""},
      {"CNI_IFNAME", "0123456789abcdef", "invalid CNI_IFNAME \"0123456789abcdef\""},
      {"CNI_NETNS", "", "CNI_NETNS is not set"},
      {"CNI_ARGS", "novalue", "invalid CNI_ARGS entry \"novalue\""},
      {"CNI_PATH", "", "CNI_PATH is not set"},
  };
  for (const auto& b : bad) {
    INFO(b.variable << "=" << b.value);
    auto vars = kAdd;
    vars[b.variable] = b.value;
    auto e = environment(vars);
    REQUIRE_FALSE(e.ok());
    CHECK(e.error().code == Code::kInvalidEnvironment);
    CHECK(e.error().msg == b.msg);
  }
}
