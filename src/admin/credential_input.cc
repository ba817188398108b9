#include "admin/credential_input.h"


#include <algorithm>
#include <boost/json/serialize.hpp>

#include "common/mask.h"
#include "common/secure_zero.h"

namespace keystore::admin {

namespace {

constexpr size_t kMaxKeyBytes = 4096;
constexpr size_t kMaxLabelBytes = 100;
constexpr size_t kMaxFreeTextBytes = 1000;
constexpr int64_t kMaxRpmLimit = 1'000'000;

std::string quoted(std::string_view name) {
  return "\"" + std::string(name) + "\"";
}

std::string joined(const std::vector<std::string>& names) {
  std::string text;
  for (const std::string& name : names) {
    text += text.empty() ? "" : ", ";
    text += name;
  }
  return text;
}

// Rejects values that cannot be a provider key before anything is stored. A mask sent back
// from a read (say, by a form that round-trips what it displayed) would otherwise replace
// the working key with a useless one. `name` is the member, e.g. "api_key" or
// "credential.auth_token".
Result<void> validateKeyText(std::string_view name, std::string_view text) {
  if (text.empty()) {
    return fail(ErrorCode::kInvalidRequest, quoted(name) + " must not be empty");
  }
  if (text.size() > kMaxKeyBytes) {
    return fail(ErrorCode::kInvalidRequest, quoted(name) + " is longer than 4096 bytes");
  }
  if (looksLikeMask(text)) {
    return fail(ErrorCode::kInvalidRequest, "the value looks like a masked key; send the full key");
  }
  // The key travels in an HTTP header, a URL or a Basic credential, where whitespace and
  // control characters would split or corrupt it.
  bool printable = std::all_of(text.begin(), text.end(), [](char c) {
    auto byte = static_cast<unsigned char>(c);
    return byte > 0x20 && byte < 0x7f;
  });
  if (!printable) {
    return fail(ErrorCode::kInvalidRequest,
                quoted(name) +
                    " contains whitespace, a control character or a non-ASCII character; send "
                    "the key exactly as the provider issued it");
  }
  return {};
}

void wipeStrings(boost::json::object& object) {
  for (auto& member : object) {
    if (member.value().is_string()) {
      boost::json::string& text = member.value().as_string();
      secureZero(text.data(), text.size());
    }
  }
}

Result<CredentialInput> readSingleKey(boost::json::object& body) {
  Result<std::optional<Secret>> api_key = takeSecretString(body, "api_key");
  if (!api_key) {
    return std::unexpected(api_key.error());
  }
  const Secret& key = **api_key;
  if (auto valid = validateKeyText("api_key", key.reveal()); !valid) {
    return std::unexpected(valid.error());
  }
  return CredentialInput{key, maskCredential(key.reveal()), credentialFingerprint(key.reveal())};
}

// Checks the fields of a "credential" object against `fields` and builds the stored text with
// the fields in catalog order, so equal credentials get equal fingerprints.
Result<CredentialInput> readFields(boost::json::object& submitted,
                                   const std::vector<std::string>& fields) {
  // Field names come from the client and might be a pasted secret, so none is repeated.
  for (const auto& member : submitted) {
    if (std::find(fields.begin(), fields.end(), member.key()) == fields.end()) {
      return fail(
          ErrorCode::kInvalidRequest,
          "\"credential\" has a field that this provider does not take; expected exactly: " +
              joined(fields));
    }
  }

  boost::json::object canonical;
  for (const std::string& field : fields) {
    std::string name = "credential." + field;
    boost::json::value* value = submitted.if_contains(field);
    if (value == nullptr) {
      return fail(ErrorCode::kInvalidRequest,
                  quoted(name) + " is required; expected exactly: " + joined(fields));
    }
    if (!value->is_string()) {
      return fail(ErrorCode::kInvalidRequest, quoted(name) + " must be a string");
    }
    std::string_view text = value->as_string();
    if (auto valid = validateKeyText(name, text); !valid) {
      return std::unexpected(valid.error());
    }
    canonical[field] = text;
  }

  std::string_view secret_field = canonical.at(fields.back()).as_string();
  CredentialInput input{Secret(boost::json::serialize(canonical)), maskCredential(secret_field),
                        ""};
  input.fingerprint = credentialFingerprint(input.plaintext.reveal());
  wipeStrings(canonical);
  return input;
}

Result<CredentialInput> readMultiField(boost::json::object& body,
                                       const std::vector<std::string>& fields) {
  boost::json::value* value = body.if_contains("credential");
  if (!value->is_object()) {
    return fail(ErrorCode::kInvalidRequest,
                "\"credential\" must be an object with the fields: " + joined(fields));
  }
  boost::json::object submitted = std::move(value->as_object());
  body.erase("credential");

  Result<CredentialInput> input = readFields(submitted, fields);
  wipeStrings(submitted);
  return input;
}

// Removes and wipes a credential member that the request may not use, before failing.
void discardMember(boost::json::object& body, std::string_view name) {
  boost::json::value* value = body.if_contains(name);
  if (value == nullptr) {
    return;
  }
  if (value->is_string()) {
    boost::json::string& text = value->as_string();
    secureZero(text.data(), text.size());
  } else if (value->is_object()) {
    wipeStrings(value->as_object());
  }
  body.erase(name);
}

}  // namespace

std::string_view credentialMemberName(const catalog::ProviderSpec& spec) {
  return spec.credential_fields.empty() ? "api_key" : "credential";
}

Result<std::optional<CredentialInput>> takeCredential(boost::json::object& body,
                                                      const catalog::ProviderSpec& spec) {
  bool has_key = body.contains("api_key");
  bool has_fields = body.contains("credential");
  if (!has_key && !has_fields) {
    return std::optional<CredentialInput>();
  }

  Result<CredentialInput> input;
  if (has_key && has_fields) {
    input = fail(ErrorCode::kInvalidRequest, "send either \"api_key\" or \"credential\", not both");
  } else if (spec.credential_fields.empty() && has_fields) {
    input = fail(ErrorCode::kInvalidRequest,
                 "provider " + spec.id + " takes one key; send it as \"api_key\"");
  } else if (!spec.credential_fields.empty() && has_key) {
    input = fail(ErrorCode::kInvalidRequest,
                 "provider " + spec.id + " needs a credential with the fields " +
                     joined(spec.credential_fields) + "; send them as the object \"credential\"");
  } else if (has_key) {
    input = readSingleKey(body);
  } else {
    input = readMultiField(body, spec.credential_fields);
  }

  discardMember(body, "api_key");
  discardMember(body, "credential");
  if (!input) {
    return std::unexpected(input.error());
  }
  return std::optional<CredentialInput>(std::move(*input));
}

Result<void> validateLabel(std::string_view label) {
  if (label.size() > kMaxLabelBytes) {
    return fail(ErrorCode::kInvalidRequest, "\"label\" is longer than 100 bytes");
  }
  bool has_control = std::any_of(label.begin(), label.end(), [](char c) {
    auto byte = static_cast<unsigned char>(c);
    return byte < 0x20 || byte == 0x7f;
  });
  if (has_control) {
    return fail(ErrorCode::kInvalidRequest, "\"label\" must not contain control characters");
  }
  return {};
}

Result<OptionalField<std::string>> readLabel(const boost::json::object& body) {
  Result<OptionalField<std::string>> label = readString(body, "label");
  if (!label) {
    return label;
  }
  if (label->value) {
    if (auto valid = validateLabel(*label->value); !valid) {
      return std::unexpected(valid.error());
    }
  }
  return label;
}

Result<std::string> readFreeText(const boost::json::object& body, std::string_view name,
                                 bool required) {
  Result<OptionalField<std::string>> field = readString(body, name);
  if (!field) {
    return std::unexpected(field.error());
  }
  std::string text = field->value.value_or("");
  if (text.size() > kMaxFreeTextBytes) {
    return fail(ErrorCode::kInvalidRequest, quoted(name) + " is longer than 1000 bytes");
  }
  bool has_control = std::any_of(text.begin(), text.end(), [](char c) {
    auto byte = static_cast<unsigned char>(c);
    return (byte < 0x20 && c != '\n' && c != '\t') || byte == 0x7f;
  });
  if (has_control) {
    return fail(ErrorCode::kInvalidRequest,
                quoted(name) + " must not contain control characters other than tab and newline");
  }
  if (required && text.find_first_not_of(" \t\n") == std::string::npos) {
    return fail(ErrorCode::kInvalidRequest, quoted(name) + " is required");
  }
  return text;
}

Result<int64_t> readRpmLimit(const boost::json::object& body) {
  Result<OptionalField<int64_t>> limit = readInteger(body, "rpm_limit");
  if (!limit) {
    return std::unexpected(limit.error());
  }
  int64_t value = limit->value.value_or(0);
  if (value < 0 || value > kMaxRpmLimit) {
    return fail(ErrorCode::kInvalidRequest,
                "\"rpm_limit\" must be from 0 (no limit of its own) to 1000000");
  }
  return value;
}

}  // namespace keystore::admin
