// secureZero: overwrites memory that held a key, token or password with zeros.
//
// glibc's explicit_bzero is an optimised memset that the compiler may not remove as a dead
// store. OPENSSL_cleanse gives the same guarantee but writes eight bytes per loop turn, which
// made it a visible share of the proxy's per-request CPU when the header arena and request
// buffers are wiped after every request.
#pragma once

#include <cstddef>
#include <cstring>

namespace keystore {

inline void secureZero(void* data, std::size_t size) {
  if (size > 0) {
    ::explicit_bzero(data, size);
  }
}

}  // namespace keystore
