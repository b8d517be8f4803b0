// libFuzzer target for the controller's CNI socket: what a client may send (a request) and what the plugin
// reads back (a reply). Whatever the bytes, nothing crashes, hangs or leaks, and a request or reply that
// parses encodes to a message that parses to the same value.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "nftpol/cni/handoff.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  namespace handoff = nftpol::cni::handoff;
  if (auto request = handoff::parseRequest(text)) {
    auto again = handoff::parseRequest(handoff::encode(*request));
    if (!again || !(*again == *request)) std::abort();
  }
  if (auto reply = handoff::parseReply(text)) {
    auto again = handoff::parseReply(handoff::encode(*reply));
    if (!again || !(*again == *reply)) std::abort();
  }
  return 0;
}
