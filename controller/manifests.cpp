#include "nftpol/controller/manifests.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <unordered_set>

#include "nftpol/policy/loader.h"
#include "nftpol/policy/manifest_files.h"

namespace nftpol::controller {

ManifestSet::Change ManifestSet::refresh() {
  Change change;
  auto listing = policy::listManifests(directory_);
  // A walk that failed somewhere may have missed files that are still there: it deletes nothing.
  listedWhole_ = listing.complete();
  if (!listedWhole_) ++change.filesWithErrors;
  change.diagnostics = std::move(listing.errors);
  std::unordered_set<std::string> seen(listing.files.begin(), listing.files.end());
  for (const auto& path : listing.files) {
    File& f = files_[path];
    // An unreadable file is an error like a parse error: its last valid objects stay, and it is read again
    // next time (a chmod changes no size or mtime).
    auto unreadable = [&](const std::string& why) {
      change.diagnostics.push_back(policy::fileError(path, why));
      ++change.filesWithErrors;
      f.broken = true;
      f.stamp = {};
      f.text.reset();
    };
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) {
      unreadable("cannot read: " + std::string(std::strerror(errno)));
      continue;
    }
    Stamp stamp{.size = st.st_size,
                .mtimeNs = static_cast<long long>(st.st_mtim.tv_sec) * 1000000000LL + st.st_mtim.tv_nsec,
                .ctimeNs = static_cast<long long>(st.st_ctim.tv_sec) * 1000000000LL + st.st_ctim.tv_nsec,
                .inode = st.st_ino};
    if (f.stamp == stamp) continue;
    auto text = policy::readManifest(path);
    if (!text) {
      unreadable(text.error().message);
      continue;
    }
    f.stamp = stamp;
    if (*text == f.text) continue;  // touched, or changed and changed back: nothing to take
    f.text = *text;
    policy::ClusterState objects;
    std::vector<policy::Diagnostic> diagnostics;
    policy::loadText(*text, path, objects, diagnostics);
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
  for (auto it = files_.begin(); listedWhole_ && it != files_.end();) {
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
