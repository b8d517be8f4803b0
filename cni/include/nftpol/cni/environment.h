#pragma once

// The CNI_* variables a runtime sets for each call (SPEC.md, "Parameters"), checked as the spec requires for
// the command at hand.

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "nftpol/cni/failure.h"

namespace nftpol::cni {

enum class Command { kAdd, kDel, kCheck, kVersion, kStatus, kGc };

struct Environment {
  Command command;
  std::string containerId;
  std::string netns;   // a path; may be empty for DEL, GC, STATUS and VERSION
  std::string ifname;  // the interface to create inside the container
  std::vector<std::pair<std::string, std::string>> args;  // CNI_ARGS, "K=V;K=V"
  std::vector<std::string> path;                          // CNI_PATH, where plugins (IPAM) are found
};

// `get` returns a variable's value, or nullopt when it is unset.
Outcome<Environment> readEnvironment(const std::function<std::optional<std::string>(const char*)>& get);

// Whether `name` can be a container ID or a network name, as libcni checks them: a letter or digit first,
// then letters, digits, '_', '.' and '-'.
bool isValidCniName(const std::string& name);

// Whether `name` can be a Linux interface name (1-15 bytes, not "." or "..", no '/', ':' or whitespace).
bool isValidInterfaceName(const std::string& name);

}  // namespace nftpol::cni
