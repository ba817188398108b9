// Safe-to-show forms of a credential: a mask such as "sk-…a1b2" and a short fingerprint.
#pragma once

#include <string>
#include <string_view>

namespace keystore {

// Shows at most a quarter of the key: its last 4 characters joined by "…" to a recognisable
// prefix (up to the last '-' or '_' within the first 8 characters, e.g. "sk-", "sk-ant-"),
// the prefix only for keys of 24 characters or more. Keys shorter than 16 show only "…".
std::string maskCredential(std::string_view plaintext);

// True when `text` looks like a mask this program (or a typical UI) produces: it contains
// "…", "***" or "...". Such a value must never be stored as a credential.
bool looksLikeMask(std::string_view text);

// "sha256:" + the first 16 hex digits of SHA-256(plaintext).
std::string credentialFingerprint(std::string_view plaintext);

}  // namespace keystore
