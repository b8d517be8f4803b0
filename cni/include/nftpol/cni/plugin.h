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

// Eight hex digits of FNV-1a over `text`: the plugin's names for what it makes (veths, chains) derive from
// what they are for, so that later calls find them without state of their own.
std::string shortHash(const std::string& text);

// The node-side end of a pod's veth: named from the attachment, so DEL finds it even when the pod's
// namespace is gone.
std::string hostVethName(const std::string& containerId, const std::string& ifname);

}  // namespace nftpol::cni
