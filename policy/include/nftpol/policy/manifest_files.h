#pragma once

#include <string>
#include <vector>

#include "nftpol/policy/cluster.h"
#include "nftpol/result.h"

namespace nftpol::policy {

// The manifests of a directory tree: every *.yaml, *.yml and *.json under it, in sorted path order. A name
// that cannot be looked at (a link to nothing, a file we may not stat) is listed all the same, so that
// reading it reports why; directories, FIFOs and devices are not. Links to directories are not followed.
struct ManifestListing {
  std::vector<std::string> files;
  // A directory that could not be read, whole or from some entry on: its manifests may be missing from
  // `files`, so a caller must not take their absence for a deletion.
  std::vector<Diagnostic> errors;
  bool complete() const { return errors.empty(); }
};
ManifestListing listManifests(const std::string& directory);

// A manifest's whole text; an error says "cannot read: <why>" (permissions, an I/O error, a link to nothing).
Result<std::string> readManifest(const std::string& path);

// The diagnostic for a whole file (no line, no column): "path: message".
Diagnostic fileError(const std::string& path, std::string message);

}  // namespace nftpol::policy
