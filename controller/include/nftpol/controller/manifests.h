#pragma once

#include <map>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "nftpol/policy/cluster.h"

namespace nftpol::controller {

// The manifests of a directory, file by file. A file that fails to parse or validate, or cannot be read,
// keeps its last valid objects, so a broken edit never opens or closes traffic; a file that is deleted takes
// its objects with it, and a directory walk that failed deletes nothing.
class ManifestSet {
 public:
  explicit ManifestSet(std::string directory) : directory_(std::move(directory)) {}

  struct Change {
    bool changed = false;                         // the merged objects differ from before
    std::vector<policy::ObjectRef> objects;       // the objects that may differ, sorted
    std::vector<policy::Diagnostic> diagnostics;  // of the files that were (re)read
    size_t filesWithErrors = 0;
  };
  // Rereads every file whose size, times or inode changed, and drops deleted files.
  Change refresh();

  // All valid objects, files merged in path order (a later file's object replaces an earlier one's). Kept up
  // to date object by object as files change; namespaces that are only named are not implied here.
  const policy::ClusterState& state() const { return merged_; }
  // The same with missing namespaces implied, as the loader does for the CLI.
  policy::ClusterState merged() const;
  size_t generation() const { return generation_; }  // counts changes of the merged objects
  // Files whose current content has errors or cannot be read (whether or not they were reread this time).
  size_t brokenFiles() const;
  // Whether the last refresh listed the whole tree.
  bool listedWhole() const { return listedWhole_; }

 private:
  // What tells that a file changed: a write changes the size or mtime, a chmod the ctime, a rename the inode.
  struct Stamp {
    long long size = -1, mtimeNs = -1, ctimeNs = -1;
    unsigned long long inode = 0;
    bool operator==(const Stamp&) const = default;
  };
  struct File {
    Stamp stamp;                      // of the version last read; none when it could not be read
    std::optional<std::string> text;  // the text last read; none when it could not be read
    policy::ClusterState objects;     // the last valid version
    bool valid = false;               // objects holds a valid version
    bool broken = false;              // the current content has errors
  };
  // Takes a file's new valid objects (none when it is gone) into the merged state.
  void replaceObjects(const std::string& path, policy::ClusterState objects, Change& change);

  std::string directory_;
  std::map<std::string, File> files_;
  policy::ClusterState merged_;
  // "kind\nkey" -> the files that define the object, in path order (pointers to files_'s keys).
  std::unordered_map<std::string, std::vector<const std::string*>> owners_;
  size_t generation_ = 0;
  bool listedWhole_ = true;
};

}  // namespace nftpol::controller
