#include "nftpol/policy/manifest_files.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <memory>

namespace nftpol::policy {

namespace fs = std::filesystem;

namespace {

bool manifestName(const fs::path& p) {
  auto ext = p.extension();
  return ext == ".yaml" || ext == ".yml" || ext == ".json";
}

void walk(const fs::path& directory, ManifestListing& out) {
  std::error_code ec;
  fs::directory_iterator it(directory, ec);
  for (; !ec && it != fs::directory_iterator(); it.increment(ec)) {
    std::error_code statEc;
    fs::file_status own = it->symlink_status(statEc);
    if (!statEc && fs::is_directory(own)) {
      walk(it->path(), out);
      continue;
    }
    if (!manifestName(it->path())) continue;
    fs::file_status target = it->status(statEc);
    // What cannot be looked at is listed, so that reading it says why; what is known not to be a file is not.
    if (statEc || fs::is_regular_file(target)) out.files.push_back(it->path().string());
  }
  if (ec) out.errors.push_back(fileError(directory.string(), "cannot read the directory: " + ec.message()));
}

}  // namespace

Diagnostic fileError(const std::string& path, std::string message) {
  return {Severity::kError, SourceLocation{std::make_shared<const std::string>(path), 0, 0}, "", "",
          std::move(message)};
}

ManifestListing listManifests(const std::string& directory) {
  ManifestListing out;
  walk(directory, out);
  std::sort(out.files.begin(), out.files.end());
  return out;
}

Result<std::string> readManifest(const std::string& path) {
  // O_NONBLOCK: a FIFO that took a file's place between the listing and now must not block the reader.
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return Error{"cannot read: " + std::string(std::strerror(errno))};
  std::string text;
  char buffer[65536];
  for (;;) {
    ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int error = errno;
      ::close(fd);
      return Error{"cannot read: " + std::string(std::strerror(error))};
    }
    if (n == 0) break;
    text.append(buffer, static_cast<size_t>(n));
  }
  ::close(fd);
  return text;
}

}  // namespace nftpol::policy
