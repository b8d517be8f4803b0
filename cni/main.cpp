// nftpol-bridge: a CNI plugin (containernetworking/cni SPEC.md 1.0.0 and 1.1.0).
#include <cstdlib>
#include <iostream>
#include <iterator>

#include "nftpol/cni/plugin.h"

int main() {
  std::string input((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
  auto reply = nftpol::cni::runPlugin(
      [](const char* name) -> std::optional<std::string> {
        const char* v = std::getenv(name);
        if (!v) return std::nullopt;
        return std::string(v);
      },
      input);
  if (!reply.stdoutText.empty()) std::cout << reply.stdoutText << "\n";
  return reply.exitCode;
}
