#include "nftpol/cni/handoff.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>

#include "nftpol/json.h"
#include "nftpol/json_value.h"

namespace nftpol::cni::handoff {

namespace {

constexpr std::array<std::pair<Op, const char*>, 3> kOps = {
    {{Op::kAdd, "ADD"}, {Op::kDel, "DEL"}, {Op::kStatus, "STATUS"}}};
constexpr std::array<std::pair<Reply::Status, const char*>, 5> kStatuses = {
    {{Reply::Status::kProgrammed, "programmed"},
     {Reply::Status::kPending, "pending"},
     {Reply::Status::kReleased, "released"},
     {Reply::Status::kReady, "ready"},
     {Reply::Status::kRefused, "refused"}}};

Error systemError(const std::string& what) {
  int e = errno;
  return Error{what + ": " + std::strerror(e), e};
}

std::string addressText(const InterfaceAddress& a) {
  return a.address.toString() + "/" + std::to_string(a.prefixLength);
}

Result<InterfaceAddress> parseAddress(const std::string& text) {
  auto slash = text.find('/');
  if (slash == std::string::npos) return Error{"\"" + text + "\" is not address/prefix"};
  auto ip = IpAddress::parse(std::string_view(text).substr(0, slash));
  if (!ip) return Error{"\"" + text + "\": " + ip.error().message};
  std::string_view bits = std::string_view(text).substr(slash + 1);
  int prefix = 0;
  if (bits.empty() || bits.size() > 3) return Error{"\"" + text + "\" has no prefix length"};
  for (char c : bits) {
    if (c < '0' || c > '9') return Error{"\"" + text + "\" has no prefix length"};
    prefix = prefix * 10 + (c - '0');
  }
  if (prefix > ip->bitLength())
    return Error{"\"" + text + "\": prefix length over " + std::to_string(ip->bitLength())};
  return InterfaceAddress{*ip, prefix};
}

// A string member, "" when absent; an error when present and not a string or over `max` bytes.
Result<std::string> stringMember(const json::Value& object, const char* key, size_t max) {
  const json::Value* v = object.find(key);
  if (!v || v->isNull()) return std::string();
  if (!v->isString()) return Error{std::string("\"") + key + "\" must be a string"};
  if (v->asString().size() > max)
    return Error{std::string("\"") + key + "\" is longer than " + std::to_string(max) + " bytes"};
  return v->asString();
}

Result<json::Value> parseObject(std::string_view message) {
  if (message.size() > kMaxMessage)
    return Error{"a message of " + std::to_string(message.size()) + " bytes is over the limit of " +
                 std::to_string(kMaxMessage)};
  auto root = json::parse(message);
  if (!root) return Error{"not JSON: " + root.error().message};
  if (!root->isObject()) return Error{"not a JSON object"};
  return root;
}

}  // namespace

bool Request::operator==(const Request& o) const {
  auto same = [](const InterfaceAddress& a, const InterfaceAddress& b) {
    return a.address == b.address && a.prefixLength == b.prefixLength;
  };
  return op == o.op && podNamespace == o.podNamespace && podName == o.podName && podUid == o.podUid &&
         containerId == o.containerId && ifname == o.ifname && wait == o.wait &&
         std::equal(addresses.begin(), addresses.end(), o.addresses.begin(), o.addresses.end(), same);
}

const char* toString(Op op) {
  for (auto [o, name] : kOps)
    if (o == op) return name;
  return "?";
}

const char* toString(Reply::Status status) {
  for (auto [s, name] : kStatuses)
    if (s == status) return name;
  return "?";
}

std::string encode(const Request& r) {
  std::string out = "{\"op\": " + jsonString(toString(r.op)) +
                    ", \"namespace\": " + jsonString(r.podNamespace) +
                    ", \"name\": " + jsonString(r.podName) + ", \"uid\": " + jsonString(r.podUid) +
                    ", \"containerID\": " + jsonString(r.containerId) +
                    ", \"ifname\": " + jsonString(r.ifname) + ", \"addresses\": [";
  for (size_t i = 0; i < r.addresses.size(); ++i)
    out += std::string(i ? ", " : "") + jsonString(addressText(r.addresses[i]));
  return out + "], \"waitMs\": " + std::to_string(r.wait.count()) + "}";
}

std::string encode(const Reply& r) {
  return "{\"status\": " + jsonString(toString(r.status)) + ", \"message\": " + jsonString(r.message) + "}";
}

Result<Request> parseRequest(std::string_view message) {
  auto root = parseObject(message);
  if (!root) return root.error();
  Request r;
  auto op = stringMember(*root, "op", 16);
  if (!op) return op.error();
  bool known = false;
  for (auto [o, name] : kOps)
    if (*op == name) {
      r.op = o;
      known = true;
    }
  if (!known) return Error{"\"op\" must be ADD, DEL or STATUS"};
  // Kubernetes names are at most 253 bytes, UIDs 36; container IDs and interface names are checked by the
  // plugin, bounded here.
  for (auto [key, field, max] :
       {std::tuple{"namespace", &r.podNamespace, size_t{253}}, std::tuple{"name", &r.podName, size_t{253}},
        std::tuple{"uid", &r.podUid, size_t{128}}, std::tuple{"containerID", &r.containerId, size_t{1024}},
        std::tuple{"ifname", &r.ifname, size_t{15}}}) {
    auto v = stringMember(*root, key, max);
    if (!v) return v.error();
    *field = std::move(*v);
  }
  if (const json::Value* list = root->find("addresses"); list && !list->isNull()) {
    if (!list->isArray()) return Error{"\"addresses\" must be an array"};
    if (list->asArray().size() > 16) return Error{"\"addresses\" holds more than 16 entries"};
    for (const auto& a : list->asArray()) {
      if (!a.isString()) return Error{"every entry of \"addresses\" must be a string"};
      auto parsed = parseAddress(a.asString());
      if (!parsed) return Error{"\"addresses\": " + parsed.error().message};
      r.addresses.push_back(*parsed);
    }
  }
  if (const json::Value* w = root->find("waitMs"); w && !w->isNull()) {
    if (!w->isInteger() || w->asInteger() < 0 || w->asInteger() > 600000)
      return Error{"\"waitMs\" must be an integer from 0 to 600000"};
    r.wait = std::chrono::milliseconds{w->asInteger()};
  }
  if (r.op == Op::kAdd) {
    if (r.podNamespace.empty() || r.podName.empty())
      return Error{
          "ADD needs the pod's \"namespace\" and \"name\" (K8S_POD_NAMESPACE, K8S_POD_NAME in CNI_ARGS)"};
    if (r.addresses.empty()) return Error{"ADD needs the pod's \"addresses\""};
  }
  if (r.op != Op::kStatus && r.containerId.empty())
    return Error{std::string(toString(r.op)) + " needs \"containerID\""};
  return r;
}

Result<Reply> parseReply(std::string_view message) {
  auto root = parseObject(message);
  if (!root) return root.error();
  auto status = stringMember(*root, "status", 16);
  if (!status) return status.error();
  Reply r;
  bool known = false;
  for (auto [s, name] : kStatuses)
    if (*status == name) {
      r.status = s;
      known = true;
    }
  if (!known) return Error{"\"status\" \"" + *status + "\" is not one the plugin knows"};
  auto text = stringMember(*root, "message", kMaxMessage);
  if (!text) return text.error();
  r.message = std::move(*text);
  return r;
}

Result<Reply> call(const std::string& socketPath, const Request& request) {
  using Clock = std::chrono::steady_clock;
  auto deadline = Clock::now() + request.wait;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (socketPath.empty() || socketPath.size() >= sizeof addr.sun_path)
    return Error{"the controller socket path \"" + socketPath + "\" is empty or too long"};
  std::memcpy(addr.sun_path, socketPath.data(), socketPath.size());
  int fd = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (fd < 0) return systemError("socket");
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
    int e = errno;
    if (e == ENOENT || e == ECONNREFUSED)
      return Error{"no controller is listening on " + socketPath + " (" + std::strerror(e) + ")", e};
    return Error{"cannot connect to the controller on " + socketPath + ": " + std::strerror(e), e};
  }
  std::string out = encode(request);
  if (::send(fd, out.data(), out.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(out.size()))
    return systemError("cannot send to the controller on " + socketPath);
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0)
      return Error{"the controller on " + socketPath + " did not answer within " +
                       std::to_string(request.wait.count()) + " ms",
                   ETIMEDOUT};
    pollfd p{fd, POLLIN, 0};
    int n = ::poll(&p, 1, static_cast<int>(left));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return systemError("poll");
    if (n == 0) continue;
    std::string in(kMaxMessage + 1, '\0');
    ssize_t got = ::recv(fd, in.data(), in.size(), MSG_TRUNC);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) return systemError("cannot read the controller's answer");
    if (got == 0)
      return Error{"the controller on " + socketPath + " closed the connection without an answer", EPIPE};
    if (static_cast<size_t>(got) > kMaxMessage)
      return Error{"the controller's answer is over " + std::to_string(kMaxMessage) + " bytes"};
    in.resize(static_cast<size_t>(got));
    auto reply = parseReply(in);
    if (!reply) return Error{"the controller's answer is not one: " + reply.error().message, EPROTO};
    return reply;
  }
}

}  // namespace nftpol::cni::handoff
