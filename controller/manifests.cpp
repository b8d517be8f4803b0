#include "nftpol/controller/manifests.h"

#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <unordered_set>

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
  static const policy::ClusterState kNone;
  auto file = files_.find(path);
  const std::string* name = &file->first;  // map keys stay put while the file is known
  File& f = file->second;
  std::vector<policy::ObjectRef> before = f.valid ? f.objects.refs() : std::vector<policy::ObjectRef>{};
  std::vector<policy::ObjectRef> after = objects.refs();
  f.objects = std::move(objects);
  auto id = [](const policy::ObjectRef& ref) { return ref.kind + '\n' + ref.key; };
  std::unordered_set<std::string> defined;
  defined.reserve(after.size());
  for (const auto& ref : after)
    defined.insert(id(ref));
  std::vector<policy::ObjectRef> touched;
  touched.reserve(before.size() + after.size());
  for (auto& ref : before) {  // objects the file no longer defines
    std::string key = id(ref);
    if (defined.count(key)) continue;
    auto& owners = owners_[key];
    owners.erase(std::remove(owners.begin(), owners.end(), name), owners.end());
    if (owners.empty()) owners_.erase(key);
    touched.push_back(std::move(ref));
  }
  for (auto& ref : after) {
    auto& owners = owners_[id(ref)];
    auto at = std::lower_bound(owners.begin(), owners.end(), name,
                               [](const std::string* a, const std::string* b) { return *a < *b; });
    if (at == owners.end() || *at != name) owners.insert(at, name);
    touched.push_back(std::move(ref));
  }
  // The last file in path order that defines an object decides it.
  for (const auto& ref : touched) {
    auto owners = owners_.find(id(ref));
    merged_.copyFrom(owners == owners_.end() ? kNone : files_.find(*owners->second.back())->second.objects,
                     ref);
  }
  change.objects.insert(change.objects.end(), std::make_move_iterator(touched.begin()),
                        std::make_move_iterator(touched.end()));
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
