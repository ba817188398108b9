// Password hashing for management API users: Argon2id through libsodium's crypto_pwhash_str,
// whose output carries its own salt and cost parameters, so a later cost change still
// verifies old hashes.
//
// Thread-safe. Hashing and verifying each take tens of milliseconds and about 64 MiB of
// memory by design, so callers keep them off I/O threads.
#pragma once

#include <string>
#include <string_view>

#include "common/error.h"
#include "common/secret.h"

namespace keystore::accounts {

inline constexpr size_t kMinPasswordLength = 12;
// libsodium hashes any length, but a bound keeps a request from costing more than its hash.
inline constexpr size_t kMaxPasswordLength = 1024;

// kInvalidRequest when the password is shorter than kMinPasswordLength bytes, longer than
// kMaxPasswordLength, or equal to the email (compared without case).
Result<void> validateNewPassword(std::string_view email, const Secret& password);

// The Argon2id hash string of `password` (OPSLIMIT_INTERACTIVE, MEMLIMIT_INTERACTIVE).
// kInternal when libsodium cannot initialize or allocate.
Result<std::string> hashPassword(const Secret& password);

// Whether `password` matches `hash`. A malformed hash never matches.
bool verifyPassword(const std::string& hash, const Secret& password);

// Runs one verification against a fixed hash of a random password and ignores the result,
// so that a sign-in with an unknown email takes about as long as one with a wrong password.
void verifyDummyPassword(const Secret& password);

}  // namespace keystore::accounts
