#pragma once

// What the plugin tells the runtime when it fails: the CNI error object (SPEC.md, "Error"), printed on stdout
// with a non-zero exit.

#include <string>

#include "nftpol/result.h"

namespace nftpol::cni {

// The spec's well-known codes (1-99 are reserved for it).
enum class Code : int {
  kIncompatibleVersion = 1,
  kUnsupportedField = 2,
  kUnknownContainer = 3,
  kInvalidEnvironment = 4,
  kIoFailure = 5,
  kDecodingFailure = 6,
  kInvalidConfig = 7,
  kTryAgainLater = 11,
  kPluginNotAvailable = 50,
  kLimitedConnectivity = 51,
  // Plugin-specific codes start at 100.
  kInternal = 100,
};

struct Failure {
  Code code;
  std::string msg;
  std::string details;
};

template <typename T>
using Outcome = Result<T, Failure>;

// The error object as JSON, for `cniVersion` (the config's, or the newest we speak when there is none).
std::string toJson(const Failure& failure, const std::string& cniVersion);

}  // namespace nftpol::cni
