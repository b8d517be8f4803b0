// libFuzzer target for what the CNI plugin reads from outside: its network config on stdin and the results
// of its delegates and of earlier plugins. Whatever the bytes, nothing crashes, hangs or leaks, and every
// JSON value that parses prints back to text that parses to the same value.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "nftpol/cni/config.h"
#include "nftpol/cni/ipam.h"
#include "nftpol/json_value.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 16 * 1024) return -1;
  std::string text(reinterpret_cast<const char*>(data), size);
  if (auto v = nftpol::json::parse(text)) {
    auto again = nftpol::json::parse(v->serialize());
    if (!again || !(*again == *v)) std::abort();
  }
  if (auto conf = nftpol::cni::parseConfig(text); conf && conf->prevResult)
    (void)nftpol::cni::appendToPrevResult(
        *conf->prevResult,
        R"({"cniVersion": "1.1.0", "interfaces": [{"name": "eth0"}], "ips": [{"address": "10.244.0.5/24", "interface": 0}]})");
  (void)nftpol::cni::parseIpamResult(text);
  return 0;
}
