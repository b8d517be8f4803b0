#pragma once

#include <string>
#include <string_view>

namespace nftpol {

// `text` as a JSON string literal, quotes included (also a valid DOT and nft string).
std::string jsonString(std::string_view text);

}  // namespace nftpol
