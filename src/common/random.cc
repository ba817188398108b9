#include "common/random.h"

#include <openssl/rand.h>

#include <cstdio>
#include <cstdlib>

#include "common/encoding.h"

namespace keystore {

std::string randomBytes(size_t size) {
  std::string out(size, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(size)) != 1) {
    std::fputs("fatal: the OpenSSL random generator failed\n", stderr);
    std::abort();
  }
  return out;
}

std::string newId(std::string_view prefix) {
  std::string id(prefix);
  id += '_';
  id += hexEncode(randomBytes(12));
  return id;
}

}  // namespace keystore
