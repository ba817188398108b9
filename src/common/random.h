// Cryptographically secure randomness (OpenSSL's CSPRNG) and the ids built from it.
// Thread-safe.
#pragma once

#include <string>
#include <string_view>

namespace keystore {

// `size` bytes from RAND_bytes. Aborts the process if the CSPRNG fails, because no caller
// can continue safely without randomness.
std::string randomBytes(size_t size);

// A new object id: the prefix, an underscore and 24 lowercase hex digits (96 random bits),
// e.g. newId("prj") == "prj_5f0c…".
std::string newId(std::string_view prefix);

}  // namespace keystore
