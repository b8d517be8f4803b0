#pragma once

// nftpol-bridge's commands: what a container runtime calls, with the environment, stdin and stdout it uses.

#include <functional>
#include <optional>
#include <string>

namespace nftpol::cni {

struct Reply {
  int exitCode;
  std::string stdoutText;  // the result, the VERSION answer, or the error object
};

Reply runPlugin(const std::function<std::optional<std::string>(const char*)>& getenv,
                const std::string& stdinText);

// The node-side end of a pod's veth: named from the attachment, so DEL finds it even when the pod's
// namespace is gone.
std::string hostVethName(const std::string& containerId, const std::string& ifname);

}  // namespace nftpol::cni
