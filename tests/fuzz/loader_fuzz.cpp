// libFuzzer target for the manifest loader: whatever the bytes, loadText must not crash, hang or leak, and
// the compiled form of whatever it accepted must be buildable and queryable.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "nftpol/policy/loader.h"
#include "nftpol/policy/matrix.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 64 * 1024) return -1;  // larger inputs only slow the search down
  nftpol::policy::ClusterState state;
  std::vector<nftpol::policy::Diagnostic> diagnostics;
  nftpol::policy::loadText(std::string_view(reinterpret_cast<const char*>(data), size), "fuzz", state,
                           diagnostics);
  for (const auto& d : diagnostics)
    (void)d.toString();
  (void)state.implyMissingNamespaces();
  auto compiled = nftpol::policy::Compiled::build(state);
  if (compiled.pods().size() <= 64)
    (void)nftpol::policy::reachability(compiled, nftpol::policy::Protocol::kTCP, 80);
  return 0;
}
