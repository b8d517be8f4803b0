#include "reflector.h"

#include <random>
#include <utility>

#include "nftpol/controller/log.h"
#include "nftpol/json_value.h"

namespace nftpol::controller {
namespace {

constexpr int kGone = 410;
constexpr int kNotFound = 404;

const json::Value* member(const json::Value& v, std::initializer_list<std::string_view> path) {
  const json::Value* at = &v;
  for (auto key : path)
    if (!(at = at->find(key))) return nullptr;
  return at;
}

std::string stringAt(const json::Value& v, std::initializer_list<std::string_view> path) {
  const json::Value* at = member(v, path);
  return at && at->isString() ? at->asString() : std::string();
}

std::string urlEncode(std::string_view text) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

class Reflector {
 public:
  Reflector(KubeSource& source, const WatchedResource& resource, ApiClient& client,
            const KubeSourceOptions& options, const std::atomic<bool>& stopping,
            const std::function<bool(std::chrono::milliseconds)>& sleep)
      : source_(source),
        resource_(resource),
        client_(client),
        options_(options),
        stopping_(stopping),
        sleep_(sleep),
        backoff_(options.minBackoff),
        random_(std::random_device{}()) {}

  void run() {
    bool needList = true;
    while (!stopping_) {
      if (needList) {
        Listed listed = list();
        if (listed == Listed::kFailed) {
          if (!pause()) return;
          continue;
        }
        // A custom resource the cluster does not have: none of its objects, until it appears.
        if (listed == Listed::kMissing) {
          if (!sleep_(options_.missingRecheck)) return;
          continue;
        }
        needList = false;
      }
      switch (watch()) {
        case Next::kWatch:
          backoff_ = options_.minBackoff;
          break;
        case Next::kList:
          needList = true;
          break;
        case Next::kRetry:
          if (!pause()) return;
          break;
      }
    }
  }

 private:
  enum class Next { kWatch, kList, kRetry };
  enum class Listed { kListed, kFailed, kMissing };

  std::string kind() const { return std::string(resource_.kind); }

  // Waits the backoff, with jitter (up to half again) so that nodes do not retry in step; doubles it.
  bool pause() {
    std::uniform_real_distribution<double> jitter(1.0, 1.5);
    auto wait = std::chrono::milliseconds(
        static_cast<long long>(static_cast<double>(backoff_.count()) * jitter(random_)));
    backoff_ = std::min(backoff_ * 2, options_.maxBackoff);
    logWarn("retrying the " + kind() + " watch",
            "event=api-retry kind=" + kind() + " in_ms=" + std::to_string(wait.count()));
    return sleep_(wait);
  }

  // Every page, queued once the whole list arrived. An optional resource the server does not know (404) is
  // queued as an empty list: whatever of its kind the source held is gone with its CRD.
  Listed list() {
    std::vector<std::string> pages;
    std::string next;
    for (;;) {
      std::string target = resource_.path() + "?limit=" + std::to_string(options_.pageSize);
      if (!next.empty()) target += "&continue=" + urlEncode(next);
      auto got = client_.get(target);
      if (!got) {
        logWarn(got.error().message, "event=api-list-failed kind=" + kind());
        return Listed::kFailed;
      }
      if (got->status == kGone && !next.empty()) {  // the continue token expired: the list starts over
        pages.clear();
        next.clear();
        continue;
      }
      if (got->status == kNotFound && resource_.optional) {
        if (!std::exchange(saidMissing_, true))
          logInfo("the cluster has no " + std::string(resource_.resource) + " (" +
                      std::string(resource_.group) + "/" + std::string(resource_.version) +
                      " is not installed): none are enforced; looking "
                      "again every " +
                      std::to_string(options_.missingRecheck.count() / 1000) + " s",
                  "event=api-kind-missing kind=" + kind());
        source_.arrive({&resource_, KubeSource::Arrival::Kind::kListed, {}});
        source_.listed(resource_);
        backoff_ = options_.minBackoff;
        return Listed::kMissing;
      }
      if (got->status == 200 && std::exchange(saidMissing_, false))
        logInfo("the cluster has " + std::string(resource_.resource) + " now",
                "event=api-kind-found kind=" + kind());
      if (got->status != 200) {
        logWarn(
            "listing " + kind() + ": HTTP " + std::to_string(got->status) + ": " + got->body.substr(0, 200),
            "event=api-list-failed kind=" + kind() + " status=" + std::to_string(got->status));
        return Listed::kFailed;
      }
      auto parsed = json::parse(got->body);
      if (!parsed || !parsed->isObject()) {
        logWarn("listing " + kind() + ": not a JSON object: " + (parsed ? "" : parsed.error().message),
                "event=api-list-failed kind=" + kind());
        return Listed::kFailed;
      }
      resourceVersion_ = stringAt(*parsed, {"metadata", "resourceVersion"});
      next = stringAt(*parsed, {"metadata", "continue"});
      pages.push_back(std::move(got->body));
      if (next.empty()) break;
    }
    source_.arrive({&resource_, KubeSource::Arrival::Kind::kListed, std::move(pages)});
    source_.listed(resource_);
    backoff_ = options_.minBackoff;
    return Listed::kListed;
  }

  Next watch() {
    std::string target = resource_.path() +
                         "?watch=1&allowWatchBookmarks=true&resourceVersion=" + urlEncode(resourceVersion_) +
                         "&timeoutSeconds=" + std::to_string(options_.watchTimeoutSeconds);
    Next after = Next::kWatch;
    size_t events = 0;
    auto started = std::chrono::steady_clock::now();
    auto onLine = [&](std::string_view line) {
      if (line.find_first_not_of(" \t\r") == std::string_view::npos) return true;
      ++events;
      auto event = json::parse(line);
      const json::Value* object = event ? event->find("object") : nullptr;
      std::string type = event ? stringAt(*event, {"type"}) : "";
      if (!object || !object->isObject() || type.empty()) {
        logWarn("a " + kind() + " watch sent a line that is not an event; listing again",
                "event=api-bad-event kind=" + kind());
        after = Next::kList;
        return false;
      }
      if (type == "ERROR") {  // a Status: 410 means the resourceVersion is too old to resume from
        const json::Value* code = object->find("code");
        bool gone = code && code->isInteger() && code->asInteger() == kGone;
        logWarn("the " + kind() + " watch ended with an error: " + stringAt(*object, {"message"}),
                "event=api-watch-error kind=" + kind() + (gone ? " gone=1" : ""));
        after = Next::kList;
        return false;
      }
      std::string version = stringAt(*object, {"metadata", "resourceVersion"});
      if (type == "ADDED" || type == "MODIFIED" || type == "DELETED") {
        json::Value copy = *object;
        if (!copy.find("kind")) copy["kind"] = kind();  // as in a list's items, which the loader also takes
        source_.arrive(
            {&resource_,
             type == "DELETED" ? KubeSource::Arrival::Kind::kDelete : KubeSource::Arrival::Kind::kUpsert,
             {copy.serialize()}});
      } else if (type != "BOOKMARK") {
        logWarn("a " + kind() + " watch sent an event of type " + type + "; listing again",
                "event=api-bad-event kind=" + kind());
        after = Next::kList;
        return false;
      }
      if (!version.empty()) resourceVersion_ = version;
      return true;
    };
    auto ended = client_.stream(target, onLine);
    if (stopping_) return Next::kWatch;
    if (!ended) {
      logWarn("the " + kind() + " watch failed: " + ended.error().message,
              "event=api-watch-failed kind=" + kind());
      return after == Next::kList ? Next::kList : Next::kRetry;
    }
    if (ended->status == kGone) return Next::kList;
    if (ended->status != 200) {
      logWarn("watching " + kind() + ": HTTP " + std::to_string(ended->status) + ": " +
                  ended->body.substr(0, 200),
              "event=api-watch-failed kind=" + kind() + " status=" + std::to_string(ended->status));
      return Next::kRetry;
    }
    // A server that ends every watch at once would have us spin: a short, empty watch counts as a failure.
    if (after == Next::kWatch && events == 0 &&
        std::chrono::steady_clock::now() - started < std::chrono::seconds(1))
      return Next::kRetry;
    return after;  // the server ended it (its timeout): resume, unless an event asked for a list
  }

  KubeSource& source_;
  const WatchedResource& resource_;
  ApiClient& client_;
  const KubeSourceOptions& options_;
  const std::atomic<bool>& stopping_;
  const std::function<bool(std::chrono::milliseconds)>& sleep_;
  std::chrono::milliseconds backoff_;
  std::string resourceVersion_;
  std::mt19937 random_;
  bool saidMissing_ = false;  // logged that the cluster does not have the resource, and it has not since
};

}  // namespace

void reflect(KubeSource& source, const WatchedResource& resource, ApiClient& client,
             const KubeSourceOptions& options, const std::atomic<bool>& stopping,
             const std::function<bool(std::chrono::milliseconds)>& sleep) {
  Reflector(source, resource, client, options, stopping, sleep).run();
}

}  // namespace nftpol::controller
