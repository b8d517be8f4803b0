#pragma once

#include <array>
#include <bit>
#include <compare>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "nftpol/result.h"

namespace nftpol {

enum class Family : uint8_t { kV4 = 4, kV6 = 6 };

// An IPv4 or IPv6 address. IPv4 is stored in the first four bytes; comparison orders v4 before v6.
class IpAddress {
 public:
  static Result<IpAddress> parse(std::string_view text);
  // For IPv4 only the first four bytes are used.
  static IpAddress fromBytes(Family family, const std::array<uint8_t, 16>& bytes);

  Family family() const { return family_; }
  const std::array<uint8_t, 16>& bytes() const { return bytes_; }
  int bitLength() const { return family_ == Family::kV4 ? 32 : 128; }
  bool bit(int i) const { return (bytes_[i / 8] >> (7 - i % 8)) & 1; }
  std::string toString() const;

  // The defaulted order, family then bytes, in two word compares instead of a byte-wise one: peer sets of
  // thousands of addresses are sorted and searched on every change of them.
  std::strong_ordering operator<=>(const IpAddress& other) const {
    if (auto c = family_ <=> other.family_; c != 0) return c;
    if (auto c = word(0) <=> other.word(0); c != 0) return c;
    return word(8) <=> other.word(8);
  }
  bool operator==(const IpAddress&) const = default;

 private:
  IpAddress() = default;
  uint64_t word(size_t at) const {  // bytes [at, at + 8) as a number, the first byte most significant
    uint64_t v;
    std::memcpy(&v, bytes_.data() + at, sizeof v);
    if constexpr (std::endian::native == std::endian::little) v = __builtin_bswap64(v);
    return v;
  }
  Family family_ = Family::kV4;
  std::array<uint8_t, 16> bytes_{};
  friend class Cidr;
};

// A network prefix. Host bits are masked off, as Kubernetes' ParseCIDRSloppy accepts "10.0.0.1/16" and
// NetworkPolicy evaluation compares against the masked network.
class Cidr {
 public:
  static Result<Cidr> parse(std::string_view text);

  Family family() const { return base_.family(); }
  const IpAddress& base() const { return base_; }
  int prefixLength() const { return prefix_; }
  bool contains(const IpAddress& ip) const;
  // True when every address of `other` is in this prefix.
  bool covers(const Cidr& other) const;
  std::string toString() const;

  auto operator<=>(const Cidr&) const = default;

 private:
  Cidr(IpAddress base, int prefix) : base_(base), prefix_(prefix) {}
  IpAddress base_;
  int prefix_ = 0;
};

}  // namespace nftpol
