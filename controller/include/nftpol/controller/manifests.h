#pragma once

#include <map>
#include <string>
#include <vector>

#include "nftpol/policy/cluster.h"

namespace nftpol::controller {

// The manifests of a directory, file by file. A file that fails to parse or validate keeps its last valid
// objects, so a broken edit never opens or closes traffic; a file that is deleted takes its objects with it.
class ManifestSet {
 public:
  explicit ManifestSet(std::string directory) : directory_(std::move(directory)) {}

  struct Change {
    bool changed = false;                         // the merged objects differ from before
    std::vector<policy::Diagnostic> diagnostics;  // of the files that were (re)read
    size_t filesWithErrors = 0;
  };
  // Rereads every file whose size or modification time changed, and drops deleted files.
  Change refresh();

  // All valid objects, files merged in path order (a later file's object replaces an earlier one's).
  policy::ClusterState merged() const;
  size_t generation() const { return generation_; }  // counts changes of the merged objects
  // Files whose current content has errors (whether or not they were reread this time).
  size_t brokenFiles() const;

 private:
  struct File {
    long long size = -1;
    long long mtimeNs = -1;
    policy::ClusterState objects;  // the last valid version
    bool valid = false;            // objects holds a valid version
    bool broken = false;           // the current content has errors
  };
  std::string directory_;
  std::map<std::string, File> files_;
  size_t generation_ = 0;
};

}  // namespace nftpol::controller
