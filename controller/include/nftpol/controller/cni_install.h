#pragma once

// `nftpol install-cni`: what the DaemonSet's init container does before the controller starts. It puts the
// node's pod network where the kubelet's runtime looks for it: the plugin binaries into the CNI bin directory
// and a `.conflist` whose host-local ranges are the node's pod subnets (Node spec.podCIDRs) into the config
// directory. Both are written whole or not at all, since the runtime reads them at any moment.

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "nftpol/controller/api_client.h"
#include "nftpol/ip.h"
#include "nftpol/result.h"

namespace nftpol::controller {

// The pod subnets of a Node object (JSON): spec.podCIDRs, else spec.podCIDR. Empty when the node has none
// yet (the node IPAM controller assigns them shortly after the node registers).
Result<std::vector<Cidr>> podCidrsOfNode(std::string_view nodeJson);

// Asks the API server for the node until it has pod subnets, for at most `timeout`; a missing node or a
// failed request is retried the same way, and `progress` hears why it is still waiting.
Result<std::vector<Cidr>> waitForPodCidrs(ApiClient& api, const std::string& node,
                                          std::chrono::milliseconds timeout,
                                          const std::function<void(const std::string&)>& progress);

// The template conflist (or single network config) with the `ranges` of every host-local IPAM section set to
// the pod subnets, one range set per subnet (dual stack gets two), and every nftpol-bridge's
// `controllerSocket` set to where this node's controller listens. The result is checked the way a runtime
// hands it to each plugin: every nftpol-bridge plugin's config must parse. Errors name the template.
Result<std::string> renderCniConfig(std::string_view templateText, const std::string& templateName,
                                    const std::vector<Cidr>& podCidrs,
                                    const std::string& controllerSocket = "/run/nftpol/cni.sock");

// What install-cni reads before it touches the node, so that a file it cannot read changes nothing.
struct CniInstallInputs {
  std::string templatePath;
  std::string templateText;
  std::vector<std::pair<std::string, std::string>> plugins;  // file name, content
};
// The template, and with `withPlugins` the plugins at `pluginPaths` (none given: nftpol-bridge beside the
// running program, as the image ships it). Errors name the file and why.
Result<CniInstallInputs> readCniInstallInputs(const std::string& templatePath, bool withPlugins,
                                              const std::vector<std::string>& pluginPaths);

// Installs the plugins into `binDir` (when given), then the rendered config as confDir/confName (empty: the
// template's file name), in that order: a runtime that finds the config must find what it names. Returns the
// paths written.
Result<std::vector<std::string>> installCni(const CniInstallInputs& inputs, const std::string& conflist,
                                            const std::optional<std::string>& binDir,
                                            const std::string& confDir, const std::string& confName);

// Writes `content` to dir/name with `mode` through a temporary file in the same directory and a rename, so a
// reader sees the old file or the new one, never a part.
std::optional<Error> installFile(const std::string& dir, const std::string& name, std::string_view content,
                                 mode_t mode);

}  // namespace nftpol::controller
