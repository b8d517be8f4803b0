#include "nftpol/nft/backend.h"

namespace nftpol::nft {

Result<Applied> FakeBackend::apply(const Table& desired) {
  Plan p = plan(view_, desired);
  view_ = viewOf(desired);
  return Applied{p.messages(desired)};
}

Result<Applied> FakeBackend::remove(const std::string&) {
  bool existed = view_.exists;
  view_ = KernelView{};
  return Applied{existed ? 1u : 0u};
}

}  // namespace nftpol::nft
