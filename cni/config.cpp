#include "nftpol/cni/config.h"

#include "nftpol/cni/environment.h"
#include "nftpol/json.h"

#include <cpprest/json.h>

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
  web::json::value root;
  try {
    root = web::json::value::parse(json);
  } catch (const web::json::json_exception& e) {
    return Failure{Code::kDecodingFailure, "the network configuration is not JSON", e.what()};
  }
  if (!root.is_object())
    return Failure{Code::kDecodingFailure, "the network configuration must be a JSON object"};
  const auto& object = root.as_object();
  NetConf conf;
  conf.text = json;

  auto string = [&](const char* key, std::string& out, bool required) -> std::optional<Failure> {
    auto it = object.find(key);
    if (it == object.end() || it->second.is_null()) {
      if (required) return invalidConfig(std::string("\"") + key + "\" is required");
      return std::nullopt;
    }
    if (!it->second.is_string()) return invalidConfig(std::string("\"") + key + "\" must be a string");
    out = it->second.as_string();
    return std::nullopt;
  };
  auto boolean = [&](const char* key, bool& out) -> std::optional<Failure> {
    auto it = object.find(key);
    if (it == object.end() || it->second.is_null()) return std::nullopt;
    if (!it->second.is_boolean()) return invalidConfig(std::string("\"") + key + "\" must be true or false");
    out = it->second.as_bool();
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

  if (auto it = object.find("mtu"); it != object.end() && !it->second.is_null()) {
    if (!it->second.is_integer()) return invalidConfig("\"mtu\" must be an integer");
    int mtu = it->second.as_integer();
    if (mtu != 0 && (mtu < 68 || mtu > 65535))
      return invalidConfig("\"mtu\" " + std::to_string(mtu) + " is out of range",
                           "0 (the default) or 68 to 65535");
    conf.mtu = mtu;
  }

  auto ipam = object.find("ipam");
  if (ipam == object.end() || !ipam->second.is_object())
    return invalidConfig("\"ipam\" is required",
                         "an object naming the IPAM plugin, e.g. {\"type\": \"host-local\", ...}");
  auto ipamType = ipam->second.as_object().find("type");
  if (ipamType == ipam->second.as_object().end() || !ipamType->second.is_string())
    return invalidConfig("\"ipam.type\" is required");
  conf.ipamType = ipamType->second.as_string();
  if (!isValidPluginType(conf.ipamType))
    return invalidConfig("invalid \"ipam.type\" \"" + conf.ipamType + "\"",
                         "the name of a plugin in CNI_PATH");

  if (auto dataDir = ipam->second.as_object().find("dataDir"); dataDir != ipam->second.as_object().end()) {
    if (!dataDir->second.is_string() || dataDir->second.as_string().empty())
      return invalidConfig("\"ipam.dataDir\" must be a directory");
    conf.hostLocalDataDir = dataDir->second.as_string();
  }

  if (auto valid = object.find("cni.dev/valid-attachments");
      valid != object.end() && !valid->second.is_null()) {
    if (!valid->second.is_array()) return invalidConfig("\"cni.dev/valid-attachments\" must be an array");
    conf.validAttachments.emplace();
    for (const auto& entry : valid->second.as_array()) {
      auto field = [&](const char* key) -> std::optional<std::string> {
        if (!entry.is_object() || !entry.has_field(key) || !entry.at(key).is_string()) return std::nullopt;
        return entry.at(key).as_string();
      };
      auto id = field("containerID");
      auto ifname = field("ifname");
      if (!id || !ifname)
        return invalidConfig(
            "every entry of \"cni.dev/valid-attachments\" needs \"containerID\" and \"ifname\"");
      conf.validAttachments->push_back({*id, *ifname});
    }
  }

  if (auto prev = object.find("prevResult"); prev != object.end() && !prev->second.is_null()) {
    if (!prev->second.is_object()) return invalidConfig("\"prevResult\" must be an object");
    conf.prevResult = prev->second.serialize();
  }
  return conf;
}

}  // namespace nftpol::cni
