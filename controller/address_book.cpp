#include "nftpol/controller/address_book.h"

#include <algorithm>

namespace nftpol::controller {

std::vector<const Binding*> AddressBook::bindingsOf(const std::string& podKey) const {
  std::vector<const Binding*> out;
  auto [from, to] = byPod_.equal_range(podKey);
  for (auto it = from; it != to; ++it)
    out.push_back(&bindings_.at(it->second));
  return out;
}

void AddressBook::unbind(const Attachment& a, BookChange& change, Clock::time_point now,
                         bool releaseAddresses) {
  auto it = bindings_.find(a);
  if (it == bindings_.end()) return;
  const Binding& b = it->second;
  change.pods.push_back(b.podKey);
  for (const auto& ip : b.addresses) {
    if (auto o = owner_.find(ip); o != owner_.end() && o->second == a) {
      owner_.erase(o);
      if (releaseAddresses) released_[ip] = now;
    }
    change.addresses.push_back(ip);
  }
  auto [from, to] = byPod_.equal_range(b.podKey);
  for (auto p = from; p != to; ++p)
    if (p->second == a) {
      byPod_.erase(p);
      break;
    }
  bindings_.erase(it);
}

BookChange AddressBook::bind(Binding binding) {
  BookChange change;
  Attachment a{binding.containerId, binding.ifname};
  unbind(a, change, Clock::now(), /*releaseAddresses=*/false);  // a repeated ADD replaces its binding
  // An address another attachment held moves here: host-local gave it to this one, so the other is stale.
  for (const auto& ip : binding.addresses) {
    if (auto o = owner_.find(ip); o != owner_.end()) {
      if (auto other = bindings_.find(o->second); other != bindings_.end()) {
        change.pods.push_back(other->second.podKey);
        auto& held = other->second.addresses;
        held.erase(std::remove(held.begin(), held.end(), ip), held.end());
      }
    }
    owner_[ip] = a;
    released_.erase(ip);
    change.addresses.push_back(ip);
  }
  change.pods.push_back(binding.podKey);
  byPod_.emplace(binding.podKey, a);
  bindings_[a] = std::move(binding);
  return change;
}

BookChange AddressBook::release(const std::string& containerId, const std::string& ifname,
                                const std::vector<IpAddress>& addresses, Clock::time_point now) {
  BookChange change;
  Attachment a{containerId, ifname};
  unbind(a, change, now, /*releaseAddresses=*/true);
  // Also what the plugin names but the book never bound (the controller restarted since the ADD), unless
  // another attachment holds it now.
  for (const auto& ip : addresses)
    if (!owner_.count(ip)) {
      released_[ip] = now;
      change.addresses.push_back(ip);
    }
  return change;
}

BookChange AddressBook::podGone(const std::string& podKey, Clock::time_point now) {
  BookChange change;
  std::vector<Attachment> of;
  auto [from, to] = byPod_.equal_range(podKey);
  for (auto it = from; it != to; ++it)
    of.push_back(it->second);
  for (const auto& a : of)
    unbind(a, change, now, /*releaseAddresses=*/true);
  return change;
}

BookChange AddressBook::expire(Clock::time_point now, std::chrono::seconds age) {
  BookChange change;
  for (auto it = released_.begin(); it != released_.end();) {
    if (now - it->second < age) {
      ++it;
      continue;
    }
    change.addresses.push_back(it->first);
    it = released_.erase(it);
  }
  return change;
}

bool AddressBook::touches(const policy::Pod& pod) const {
  if (byPod_.count(pod.key())) return true;
  return std::any_of(pod.ips.begin(), pod.ips.end(),
                     [&](const IpAddress& ip) { return owner_.count(ip) || released_.count(ip); });
}

std::optional<policy::Pod> AddressBook::overlay(const policy::Pod& pod, const std::string& node) const {
  std::vector<IpAddress> ips;
  bool bound = false;
  for (const Binding* b : bindingsOf(pod.key())) {
    // A pod object of the same name but another UID is an earlier (or later) pod, not the bound one.
    if (!b->podUid.empty() && !pod.uid.empty() && b->podUid != pod.uid) continue;
    bound = true;
    ips.insert(ips.end(), b->addresses.begin(), b->addresses.end());
  }
  if (bound) {
    policy::Pod out = pod;
    // The plugin's addresses, IPv4 first as status.podIPs lists them.
    std::stable_sort(ips.begin(), ips.end(),
                     [](const IpAddress& a, const IpAddress& b) { return a.family() < b.family(); });
    out.ips = std::move(ips);
    out.nodeName = node;
    if (out.ips == pod.ips && out.nodeName == pod.nodeName) return std::nullopt;
    return out;
  }
  policy::Pod out = pod;
  std::erase_if(out.ips, [&](const IpAddress& ip) { return owner_.count(ip) || released_.count(ip); });
  if (out.ips.size() == pod.ips.size()) return std::nullopt;
  return out;
}

}  // namespace nftpol::controller
