#include "nftpol/controller/manifests.h"

#include <sys/stat.h>

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
    f.objects = std::move(objects);
    f.valid = true;
    change.changed = true;
  }
  for (auto it = files_.begin(); it != files_.end();) {
    if (seen.count(it->first)) {
      ++it;
      continue;
    }
    change.changed = change.changed || it->second.valid;
    it = files_.erase(it);
  }
  if (change.changed) ++generation_;
  return change;
}

size_t ManifestSet::brokenFiles() const {
  size_t n = 0;
  for (const auto& [path, f] : files_)
    n += f.broken;
  return n;
}

policy::ClusterState ManifestSet::merged() const {
  policy::ClusterState state;
  for (const auto& [path, f] : files_) {
    if (!f.valid) continue;
    for (const auto& n : f.objects.namespaces())
      state.upsert(n);
    for (const auto& p : f.objects.pods())
      state.upsert(p);
    for (const auto& p : f.objects.policies())
      state.upsert(p);
    for (const auto& o : f.objects.others())
      state.upsert(o);
  }
  (void)state.implyMissingNamespaces();
  return state;
}

}  // namespace nftpol::controller
