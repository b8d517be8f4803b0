#pragma once

// The network configuration a runtime passes on stdin (SPEC.md, "Network configuration"), with the fields of
// the reference `bridge` plugin that nftpol-bridge takes.

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "nftpol/cni/failure.h"

namespace nftpol::cni {

// The versions we speak, oldest first; a result is written in the config's version.
extern const std::vector<std::string> kSupportedVersions;

// One interface of one container, as GC names those still in use.
struct Attachment {
  std::string containerId;
  std::string ifname;
  bool operator==(const Attachment&) const = default;
};

struct NetConf {
  std::string cniVersion;
  std::string name;
  std::string type;
  std::string bridge = "cni0";
  bool isGateway = false;  // the bridge holds each subnet's gateway address
  bool isDefaultGateway = false;
  bool ipMasq = false;
  bool hairpinMode = false;
  int mtu = 0;  // 0: the kernel's default
  std::string ipamType;
  std::string text;                       // the config as received, handed to the IPAM plugin unchanged
  std::optional<std::string> prevResult;  // JSON, when a chain or CHECK passes one
  // GC (1.1.0): the attachments the runtime still uses ("cni.dev/valid-attachments"); everything else of this
  // network is released.
  std::optional<std::vector<Attachment>> validAttachments;
  std::string hostLocalDataDir =
      "/var/lib/cni/networks";  // `ipam.dataDir`: where host-local keeps reservations

  // The handoff to the node's controller (nftpol-specific keys). `controllerSocket`: where it listens.
  std::string controllerSocket = "/run/nftpol/cni.sock";
  // `policyHandoff`: "required" (ADD fails, code 11, unless the controller has taken the pod) or
  // "best-effort" (ADD goes on without it, and says so on stderr).
  enum class Handoff { kRequired, kBestEffort } handoff = Handoff::kRequired;
  std::chrono::milliseconds controllerTimeout{5000};  // `controllerTimeoutMs`: how long ADD waits for it
};

Outcome<NetConf> parseConfig(const std::string& json);

// The reply to VERSION.
std::string versionJson();

}  // namespace nftpol::cni
