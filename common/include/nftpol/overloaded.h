#pragma once

// std::visit with one lambda per alternative: a variant that gains an alternative no visitor handles fails to
// compile instead of falling through at run time.
namespace nftpol {

template <typename... Fs>
struct Overloaded : Fs... {
  using Fs::operator()...;
};
template <typename... Fs>
Overloaded(Fs...) -> Overloaded<Fs...>;

}  // namespace nftpol
