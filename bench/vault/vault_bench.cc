// Micro-benchmark of the crypto the proxy runs on every request: opening a sealed credential
// (AES-256-GCM) and hashing an agent token (SHA-256), against references that make the same
// OpenSSL calls but name the algorithm with EVP_aes_256_gcm() / EVP_sha256(), which makes
// OpenSSL 3 look it up in its provider tables on every call. Keystore fetches each algorithm
// once per process.
//
// After the benchmarks the program prints each Keystore figure as a ratio to its reference,
// both measured in this run (CPU time per iteration).
//
// Usage: vault_bench [Google Benchmark flags]

#include <benchmark/benchmark.h>
#include <openssl/evp.h>

#include <map>
#include <string>

#include "common/hash.h"
#include "common/random.h"
#include "support/ratio_reporter.h"
#include "vault/aead.h"

namespace {

const std::string kKey = keystore::randomBytes(32);
const std::string kContext =
    "prj_bench\x1fopenai\x1f"
    "cred_bench";
const std::string kCredential = "sk-test-BENCHMARK-0000000000000000000000000000000000";
const std::string kToken = "ks_" + std::string(64, 'a');

void BM_OpenCredential(benchmark::State& state) {
  auto sealed = keystore::vault::seal(kKey, "dk_bench", kContext, kCredential);
  for (auto _ : state) {
    auto opened = keystore::vault::open(kKey, kContext, *sealed);
    benchmark::DoNotOptimize(opened);
  }
}
BENCHMARK(BM_OpenCredential);

// The decryption of a credential-sized GCM ciphertext with the algorithm named per call.
void BM_OpenReferenceLookupEachCall(benchmark::State& state) {
  unsigned char iv[12] = {};
  unsigned char tag[16] = {};
  std::string ciphertext(kCredential.size(), '\0');
  {
    EVP_CIPHER_CTX* context = EVP_CIPHER_CTX_new();
    int size = 0;
    EVP_EncryptInit_ex(context, EVP_aes_256_gcm(), nullptr,
                       reinterpret_cast<const unsigned char*>(kKey.data()), iv);
    EVP_EncryptUpdate(context, nullptr, &size,
                      reinterpret_cast<const unsigned char*>(kContext.data()),
                      static_cast<int>(kContext.size()));
    EVP_EncryptUpdate(context, reinterpret_cast<unsigned char*>(ciphertext.data()), &size,
                      reinterpret_cast<const unsigned char*>(kCredential.data()),
                      static_cast<int>(kCredential.size()));
    EVP_EncryptFinal_ex(context, nullptr, &size);
    EVP_CIPHER_CTX_ctrl(context, EVP_CTRL_GCM_GET_TAG, 16, tag);
    EVP_CIPHER_CTX_free(context);
  }
  std::string plaintext(kCredential.size(), '\0');
  for (auto _ : state) {
    EVP_CIPHER_CTX* context = EVP_CIPHER_CTX_new();
    int size = 0;
    EVP_DecryptInit_ex(context, EVP_aes_256_gcm(), nullptr,
                       reinterpret_cast<const unsigned char*>(kKey.data()), iv);
    EVP_DecryptUpdate(context, nullptr, &size,
                      reinterpret_cast<const unsigned char*>(kContext.data()),
                      static_cast<int>(kContext.size()));
    EVP_DecryptUpdate(context, reinterpret_cast<unsigned char*>(plaintext.data()), &size,
                      reinterpret_cast<const unsigned char*>(ciphertext.data()),
                      static_cast<int>(ciphertext.size()));
    EVP_CIPHER_CTX_ctrl(context, EVP_CTRL_GCM_SET_TAG, 16, tag);
    int ok = EVP_DecryptFinal_ex(context, nullptr, &size);
    EVP_CIPHER_CTX_free(context);
    benchmark::DoNotOptimize(ok);
  }
}
BENCHMARK(BM_OpenReferenceLookupEachCall);

void BM_HashToken(benchmark::State& state) {
  for (auto _ : state) {
    std::string digest = keystore::sha256(kToken);
    benchmark::DoNotOptimize(digest);
  }
}
BENCHMARK(BM_HashToken);

void BM_HashReferenceLookupEachCall(benchmark::State& state) {
  for (auto _ : state) {
    std::string digest(32, '\0');
    unsigned int size = 0;
    EVP_Digest(kToken.data(), kToken.size(), reinterpret_cast<unsigned char*>(digest.data()), &size,
               EVP_sha256(), nullptr);
    benchmark::DoNotOptimize(digest);
  }
}
BENCHMARK(BM_HashReferenceLookupEachCall);

}  // namespace

int main(int argc, char** argv) {
  return keystore::bench::runWithRatios(
      argc, argv, [](const keystore::bench::RatioReporter& reporter) {
        reporter.printRatio("open credential", "BM_OpenCredential",
                            "BM_OpenReferenceLookupEachCall");
        reporter.printRatio("hash token", "BM_HashToken", "BM_HashReferenceLookupEachCall");
      });
}
