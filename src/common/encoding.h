// Text encodings of binary data: lowercase hex and standard base64 (RFC 4648, padded).
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace keystore {

std::string hexEncode(std::string_view bytes);
// Accepts upper- and lowercase digits; returns nullopt on odd length or a non-hex character.
std::optional<std::string> hexDecode(std::string_view hex);

std::string base64Encode(std::string_view bytes);
// Returns nullopt on characters outside the base64 alphabet or bad padding.
std::optional<std::string> base64Decode(std::string_view text);

}  // namespace keystore
