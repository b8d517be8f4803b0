#include "nftpol/controller/manifests.h"

#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "nftpol/policy/loader.h"

namespace nftpol::controller {

ManifestSet::Change ManifestSet::refresh() {
  namespace fs = std::filesystem;
  Change change;
  std::map<std::string, bool> seen;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(directory_, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    auto ext = it->path().extension();
    if (!it->is_regular_file(ec) || (ext != ".yaml" && ext != ".yml" && ext != ".json")) continue;
    std::string path = it->path().string();
    seen[path] = true;
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) continue;
    long long mtime = static_cast<long long>(st.st_mtim.tv_sec) * 1000000000LL + st.st_mtim.tv_nsec;
    File& f = files_[path];
    if (f.size == st.st_size && f.mtimeNs == mtime) continue;
    f.size = st.st_size;
    f.mtimeNs = mtime;
    std::ifstream in(path, std::ios::binary);
    std::stringstream buffer;
    buffer << in.rdbuf();
    policy::ClusterState objects;
    std::vector<policy::Diagnostic> diagnostics;
    policy::loadText(buffer.str(), path, objects, diagnostics);
    bool valid = !policy::hasErrors(diagnostics);
    change.diagnostics.insert(change.diagnostics.end(), diagnostics.begin(), diagnostics.end());
    f.broken = !valid;
    if (!valid) {
      ++change.filesWithErrors;  // keep the last valid version of this file's objects
      continue;
    }
    replaceObjects(path, std::move(objects), change);
    f.valid = true;
  }
  for (auto it = files_.begin(); it != files_.end();) {
    if (seen.count(it->first)) {
      ++it;
      continue;
    }
    if (it->second.valid) replaceObjects(it->first, {}, change);
    it = files_.erase(it);
  }
  std::sort(change.objects.begin(), change.objects.end());
  change.objects.erase(std::unique(change.objects.begin(), change.objects.end()), change.objects.end());
  if (change.changed) ++generation_;
  return change;
}

void ManifestSet::replaceObjects(const std::string& path, policy::ClusterState objects, Change& change) {
  File& f = files_[path];
  std::vector<policy::ObjectRef> before = f.valid ? f.objects.refs() : std::vector<policy::ObjectRef>{};
  std::vector<policy::ObjectRef> after = objects.refs();
  f.objects = std::move(objects);
  std::sort(after.begin(), after.end());
  std::vector<policy::ObjectRef> touched;
  for (const auto& ref : before) {  // objects the file no longer defines
    if (std::binary_search(after.begin(), after.end(), ref)) continue;
    auto& owners = owners_[ref];
    owners.erase(std::remove(owners.begin(), owners.end(), path), owners.end());
    if (owners.empty()) owners_.erase(ref);
    touched.push_back(ref);
  }
  for (const auto& ref : after) {
    auto& owners = owners_[ref];
    auto at = std::lower_bound(owners.begin(), owners.end(), path);
    if (at == owners.end() || *at != path) owners.insert(at, path);
    touched.push_back(ref);
  }
  // The last file in path order that defines an object decides it.
  for (const auto& ref : touched) {
    auto owners = owners_.find(ref);
    if (owners == owners_.end()) {
      merged_.copyFrom(policy::ClusterState{}, ref);
    } else {
      merged_.copyFrom(files_[owners->second.back()].objects, ref);
    }
  }
  change.objects.insert(change.objects.end(), touched.begin(), touched.end());
  change.changed = true;
}

size_t ManifestSet::brokenFiles() const {
  size_t n = 0;
  for (const auto& [path, f] : files_)
    n += f.broken;
  return n;
}

policy::ClusterState ManifestSet::merged() const {
  policy::ClusterState state = merged_;
  (void)state.implyMissingNamespaces();
  return state;
}

}  // namespace nftpol::controller
