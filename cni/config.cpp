#include "nftpol/cni/config.h"

#include "nftpol/cni/environment.h"
#include "nftpol/json.h"

#include "nftpol/json_value.h"

#include <algorithm>
#include <cctype>

namespace nftpol::cni {

const std::vector<std::string> kSupportedVersions = {"1.0.0", "1.1.0"};

namespace {

Failure invalidConfig(std::string msg, std::string details = "") {
  return Failure{Code::kInvalidConfig, std::move(msg), std::move(details)};
}

// A plugin type names an executable in CNI_PATH, never a path.
bool isValidPluginType(const std::string& type) {
  return !type.empty() && type != "." && type != ".." && type.find('/') == std::string::npos;
}

}  // namespace

std::string versionJson() {
  std::string versions;
  for (const auto& v : kSupportedVersions)
    versions += (versions.empty() ? "" : ", ") + jsonString(v);
  return "{\"cniVersion\": " + jsonString(kSupportedVersions.back()) + ", \"supportedVersions\": [" +
         versions + "]}";
}

Outcome<NetConf> parseConfig(const std::string& json) {
  auto root = json::parse(json);
  if (!root)
    return Failure{Code::kDecodingFailure, "the network configuration is not JSON", root.error().message};
  if (!root->isObject())
    return Failure{Code::kDecodingFailure, "the network configuration must be a JSON object"};
  const json::Value& object = *root;
  NetConf conf;
  conf.text = json;

  auto string = [&](const char* key, std::string& out, bool required) -> std::optional<Failure> {
    auto* v = object.find(key);
    if (!v || v->isNull()) {
      if (required) return invalidConfig(std::string("\"") + key + "\" is required");
      return std::nullopt;
    }
    if (!v->isString()) return invalidConfig(std::string("\"") + key + "\" must be a string");
    out = v->asString();
    return std::nullopt;
  };
  auto boolean = [&](const char* key, bool& out) -> std::optional<Failure> {
    auto* v = object.find(key);
    if (!v || v->isNull()) return std::nullopt;
    if (!v->isBool()) return invalidConfig(std::string("\"") + key + "\" must be true or false");
    out = v->asBool();
    return std::nullopt;
  };

  if (auto f = string("cniVersion", conf.cniVersion, true)) return *f;
  if (std::find(kSupportedVersions.begin(), kSupportedVersions.end(), conf.cniVersion) ==
      kSupportedVersions.end())
    return Failure{Code::kIncompatibleVersion, "incompatible CNI version \"" + conf.cniVersion + "\"",
                   "nftpol-bridge speaks 1.0.0 and 1.1.0"};
  if (auto f = string("name", conf.name, true)) return *f;
  if (!isValidCniName(conf.name))
    return invalidConfig(
        "invalid network name \"" + conf.name + "\"",
        "a name starts with a letter or digit and holds only letters, digits, '_', '.' and '-'");
  if (auto f = string("type", conf.type, true)) return *f;
  if (auto f = string("bridge", conf.bridge, false)) return *f;
  if (!isValidInterfaceName(conf.bridge))
    return invalidConfig("invalid bridge name \"" + conf.bridge + "\"",
                         "an interface name has 1 to 15 characters and no '/', ':' or whitespace");
  for (auto [key, field] :
       {std::pair{"isGateway", &conf.isGateway}, std::pair{"isDefaultGateway", &conf.isDefaultGateway},
        std::pair{"ipMasq", &conf.ipMasq}, std::pair{"hairpinMode", &conf.hairpinMode}})
    if (auto f = boolean(key, *field)) return *f;
  if (conf.isDefaultGateway) conf.isGateway = true;  // a default route needs the gateway on the bridge

  if (auto* v = object.find("mtu"); v && !v->isNull()) {
    if (!v->isInteger()) return invalidConfig("\"mtu\" must be an integer");
    int64_t mtu = v->asInteger();
    if (mtu != 0 && (mtu < 68 || mtu > 65535))
      return invalidConfig("\"mtu\" " + std::to_string(mtu) + " is out of range",
                           "0 (the default) or 68 to 65535");
    conf.mtu = static_cast<int>(mtu);
  }

  auto* ipam = object.find("ipam");
  if (!ipam || !ipam->isObject())
    return invalidConfig("\"ipam\" is required",
                         "an object naming the IPAM plugin, e.g. {\"type\": \"host-local\", ...}");
  auto* ipamType = ipam->find("type");
  if (!ipamType || !ipamType->isString()) return invalidConfig("\"ipam.type\" is required");
  conf.ipamType = ipamType->asString();
  if (!isValidPluginType(conf.ipamType))
    return invalidConfig("invalid \"ipam.type\" \"" + conf.ipamType + "\"",
                         "the name of a plugin in CNI_PATH");

  if (auto* dataDir = ipam->find("dataDir")) {
    if (!dataDir->isString() || dataDir->asString().empty())
      return invalidConfig("\"ipam.dataDir\" must be a directory");
    conf.hostLocalDataDir = dataDir->asString();
  }

  if (auto* valid = object.find("cni.dev/valid-attachments"); valid && !valid->isNull()) {
    if (!valid->isArray()) return invalidConfig("\"cni.dev/valid-attachments\" must be an array");
    conf.validAttachments.emplace();
    for (const auto& entry : valid->asArray()) {
      auto* id = entry.find("containerID");
      auto* ifname = entry.find("ifname");
      if (!id || !id->isString() || !ifname || !ifname->isString())
        return invalidConfig(
            "every entry of \"cni.dev/valid-attachments\" needs \"containerID\" and \"ifname\"");
      conf.validAttachments->push_back({id->asString(), ifname->asString()});
    }
  }

  if (auto f = string("controllerSocket", conf.controllerSocket, false)) return *f;
  if (conf.controllerSocket.empty() || conf.controllerSocket.front() != '/' ||
      conf.controllerSocket.size() > 107)
    return invalidConfig("\"controllerSocket\" must be an absolute path of at most 107 bytes");
  std::string handoff = "required";
  if (auto f = string("policyHandoff", handoff, false)) return *f;
  if (handoff == "best-effort") {
    conf.handoff = NetConf::Handoff::kBestEffort;
  } else if (handoff != "required") {
    return invalidConfig("invalid \"policyHandoff\" \"" + handoff + "\"",
                         "\"required\" (the default) or \"best-effort\"");
  }
  if (auto* v = object.find("controllerTimeoutMs"); v && !v->isNull()) {
    if (!v->isInteger() || v->asInteger() < 100 || v->asInteger() > 120000)
      return invalidConfig("\"controllerTimeoutMs\" must be an integer from 100 to 120000");
    conf.controllerTimeout = std::chrono::milliseconds{v->asInteger()};
  }

  if (auto* prev = object.find("prevResult"); prev && !prev->isNull()) {
    if (!prev->isObject()) return invalidConfig("\"prevResult\" must be an object");
    conf.prevResult = prev->serialize();
  }
  return conf;
}

}  // namespace nftpol::cni
