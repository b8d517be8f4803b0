#include "nftpol/ip.h"

#include <arpa/inet.h>

#include <algorithm>
#include <charconv>
#include <cstring>

namespace nftpol {

Result<IpAddress> IpAddress::parse(std::string_view text) {
  std::string s(text);
  IpAddress ip;
  if (s.find(':') == std::string::npos) {
    in_addr a{};
    if (inet_pton(AF_INET, s.c_str(), &a) != 1) return Error{"invalid IP address \"" + s + "\""};
    ip.family_ = Family::kV4;
    std::memcpy(ip.bytes_.data(), &a, 4);
  } else {
    in6_addr a{};
    if (inet_pton(AF_INET6, s.c_str(), &a) != 1) return Error{"invalid IP address \"" + s + "\""};
    ip.family_ = Family::kV6;
    std::memcpy(ip.bytes_.data(), &a, 16);
  }
  return ip;
}

IpAddress IpAddress::fromBytes(Family family, const std::array<uint8_t, 16>& bytes) {
  IpAddress ip;
  ip.family_ = family;
  std::copy(bytes.begin(), bytes.begin() + (family == Family::kV4 ? 4 : 16), ip.bytes_.begin());
  return ip;
}

std::string IpAddress::toString() const {
  if (family_ == Family::kV4) {
    // By hand: inet_ntop formats IPv4 through sprintf, which was a tenth of rendering a large table's named
    // port sets (their names hash their text).
    std::string out;
    out.reserve(15);
    for (int i = 0; i < 4; ++i) {
      unsigned v = bytes_[static_cast<size_t>(i)];
      if (i) out += '.';
      if (v >= 100) out += static_cast<char>('0' + v / 100);
      if (v >= 10) out += static_cast<char>('0' + v / 10 % 10);
      out += static_cast<char>('0' + v % 10);
    }
    return out;
  }
  char buf[INET6_ADDRSTRLEN] = {};
  inet_ntop(AF_INET6, bytes_.data(), buf, sizeof buf);
  return buf;
}

Result<Cidr> Cidr::parse(std::string_view text) {
  auto slash = text.find('/');
  auto bad = [&] {
    return Error{"invalid CIDR \"" + std::string(text) +
                 "\" (must be an address and a prefix length, e.g. 10.0.0.0/16)"};
  };
  if (slash == std::string_view::npos) return bad();
  auto ip = IpAddress::parse(text.substr(0, slash));
  if (!ip) return bad();
  auto len = text.substr(slash + 1);
  int prefix = -1;
  auto [end, ec] = std::from_chars(len.data(), len.data() + len.size(), prefix);
  if (len.empty() || ec != std::errc() || end != len.data() + len.size() || prefix < 0 ||
      prefix > ip->bitLength() || (len.size() > 1 && len[0] == '0'))
    return bad();
  IpAddress base = *ip;
  for (int i = prefix; i < base.bitLength(); ++i)
    base.bytes_[i / 8] &= static_cast<uint8_t>(~(0x80 >> (i % 8)));
  return Cidr(base, prefix);
}

bool Cidr::contains(const IpAddress& ip) const {
  if (ip.family() != family()) return false;
  int full = prefix_ / 8;
  if (std::memcmp(ip.bytes().data(), base_.bytes().data(), full) != 0) return false;
  int rest = prefix_ % 8;
  if (rest == 0) return true;
  uint8_t mask = static_cast<uint8_t>(0xff << (8 - rest));
  return (ip.bytes()[full] & mask) == base_.bytes()[full];
}

bool Cidr::covers(const Cidr& other) const {
  return other.family() == family() && other.prefix_ >= prefix_ && contains(other.base_);
}

std::string Cidr::toString() const {
  return base_.toString() + "/" + std::to_string(prefix_);
}

}  // namespace nftpol
