#pragma once

// IPAM delegated the standard way (SPEC.md, "Delegated plugins"): the plugin named by `ipam.type` is found in
// CNI_PATH and run with our environment and our config on stdin. Debian's host-local (1.1.1) speaks CNI up to
// 1.0.0, whose result has the same shape as 1.1.0's, so a 1.1.0 config is handed to it as 1.0.0.

#include <optional>
#include <string>
#include <vector>

#include "nftpol/cni/config.h"
#include "nftpol/cni/environment.h"
#include "nftpol/rtnl.h"

namespace nftpol::cni {

struct IpamAddress {
  InterfaceAddress address;
  std::optional<IpAddress> gateway;
};

struct IpamRoute {
  Cidr destination;
  std::optional<IpAddress> gateway;
};

struct IpamResult {
  std::vector<IpamAddress> ips;
  std::vector<IpamRoute> routes;
  std::string dns = "{}";  // passed through as JSON
};

// The executable for plugin `type` in the CNI_PATH directories, first match.
std::optional<std::string> findPlugin(const std::string& type, const std::vector<std::string>& path);

// Runs the IPAM plugin for `command` ("ADD", "DEL", "VERSION" or "GC") and returns its stdout; its own CNI
// error when it fails.
Outcome<std::string> runIpam(const NetConf& conf, const Environment& env, const std::string& command);

// ADD in a chain: the previous plugins' result with ours appended (interfaces, ips with their interface
// indices moved past the previous interfaces, routes; our dns when we have one), in our version.
Outcome<std::string> appendToPrevResult(const std::string& prevResult, const std::string& ours);

// Reads an IPAM plugin's result.
Outcome<IpamResult> parseIpamResult(const std::string& json);

}  // namespace nftpol::cni
