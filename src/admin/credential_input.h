// Reading credentials and the text members that go with them (label, note, reason, rpm_limit)
// from management API request bodies. Internal to src/admin.
//
// A provider's credential is one plain key (`"api_key": "sk-…"`) or, when the catalog lists
// `credential_fields`, an object holding exactly those fields
// (`"credential": {"account_sid": "AC…", "auth_token": "…"}`). Error messages name members and
// fields, never their values.
//
// Free functions on values, thread-safe.
#pragma once

#include <boost/json/object.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "admin/json_body.h"
#include "catalog/catalog.h"
#include "common/error.h"
#include "common/secret.h"

namespace keystore::admin {

// A credential checked against its provider, ready to encrypt.
struct CredentialInput {
  // The plaintext the vault stores: the key itself, or the JSON text of the fields in the
  // catalog's `credential_fields` order.
  Secret plaintext;
  // Safe to show: the mask of the key, or of the last field (the secret one, such as
  // auth_token) for a credential with several fields.
  std::string mask;
  // credentialFingerprint() of the plaintext.
  std::string fingerprint;
};

// Removes "api_key" and "credential" from `body`, wipes the parsed copies and checks them
// against `spec`: a provider without credential_fields takes "api_key" only, one with them
// takes "credential" only, with exactly those fields. nullopt when both members are absent.
// kInvalidRequest for a wrong member, type, missing or unknown field, or a value that is empty,
// longer than 4096 bytes, masked-looking or not printable ASCII.
Result<std::optional<CredentialInput>> takeCredential(boost::json::object& body,
                                                      const catalog::ProviderSpec& spec);

// The member a provider's credential goes in: "credential" or "api_key".
std::string_view credentialMemberName(const catalog::ProviderSpec& spec);

// Checks a label: at most 100 bytes, no control characters.
Result<void> validateLabel(std::string_view label);

// Reads an optional "label" member and checks it.
Result<OptionalField<std::string>> readLabel(const boost::json::object& body);

// Reads a free-text member such as "note" or "reason": a string of at most 1000 bytes whose
// only control characters are tab and line feed. Absent reads as "". kInvalidRequest when it
// is `required` and absent or blank.
Result<std::string> readFreeText(const boost::json::object& body, std::string_view name,
                                 bool required);

// Reads "rpm_limit" of a pool credential: an integer from 0 (no limit of its own) to
// 1,000,000. Absent reads as 0.
Result<int64_t> readRpmLimit(const boost::json::object& body);

}  // namespace keystore::admin
