#include "admin/json_body.h"


#include <boost/json/parse.hpp>

#include "common/secure_zero.h"

namespace keystore::admin {

namespace {

bool isBlank(std::string_view text) {
  return text.find_first_not_of(" \t\r\n") == std::string_view::npos;
}

std::string quoted(std::string_view name) {
  return "\"" + std::string(name) + "\"";
}

}  // namespace

Result<boost::json::object> parseObjectBody(std::string_view body) {
  if (isBlank(body)) {
    return boost::json::object();
  }

  boost::system::error_code error;
  boost::json::value document = boost::json::parse(body, error);
  if (error) {
    return fail(ErrorCode::kInvalidJson,
                "the request body is not valid JSON (" + error.message() + ")");
  }
  if (!document.is_object()) {
    return fail(ErrorCode::kInvalidRequest, "the request body must be a JSON object");
  }
  return std::move(document.as_object());
}

Result<void> rejectUnknownMembers(const boost::json::object& body,
                                  std::initializer_list<std::string_view> allowed) {
  for (const auto& member : body) {
    bool known = false;
    for (std::string_view name : allowed) {
      known = known || member.key() == name;
    }
    if (known) {
      continue;
    }

    std::string expected;
    for (std::string_view name : allowed) {
      expected += expected.empty() ? "" : ", ";
      expected += name;
    }
    // Member names come from the client, so the message shows at most 64 bytes of one.
    std::string_view key = member.key();
    std::string shown(key.substr(0, 64));
    return fail(ErrorCode::kInvalidRequest,
                "unknown member " + quoted(shown) + "; expected one of: " + expected);
  }
  return {};
}

Result<OptionalField<std::string>> readString(const boost::json::object& body,
                                              std::string_view name, bool allow_null) {
  OptionalField<std::string> field;
  const boost::json::value* value = body.if_contains(name);
  if (value == nullptr) {
    return field;
  }

  field.present = true;
  if (value->is_null() && allow_null) {
    return field;
  }
  if (!value->is_string()) {
    return fail(ErrorCode::kInvalidRequest,
                quoted(name) + " must be a string" + (allow_null ? " or null" : ""));
  }
  field.value = std::string(value->as_string());
  return field;
}

Result<std::string> readRequiredString(const boost::json::object& body, std::string_view name) {
  Result<OptionalField<std::string>> field = readString(body, name);
  if (!field) {
    return std::unexpected(field.error());
  }
  if (!field->value) {
    return fail(ErrorCode::kInvalidRequest, quoted(name) + " is required");
  }
  return std::move(*field->value);
}

Result<OptionalField<int64_t>> readInteger(const boost::json::object& body, std::string_view name,
                                           bool allow_null) {
  OptionalField<int64_t> field;
  const boost::json::value* value = body.if_contains(name);
  if (value == nullptr) {
    return field;
  }

  field.present = true;
  if (value->is_null() && allow_null) {
    return field;
  }
  if (value->is_int64()) {
    field.value = value->as_int64();
    return field;
  }
  if (value->is_uint64()) {
    return fail(ErrorCode::kInvalidRequest, quoted(name) + " is too large");
  }
  return fail(ErrorCode::kInvalidRequest,
              quoted(name) + " must be an integer" + (allow_null ? " or null" : ""));
}

Result<std::optional<Secret>> takeSecretString(boost::json::object& body, std::string_view name) {
  boost::json::value* value = body.if_contains(name);
  if (value == nullptr) {
    return std::optional<Secret>();
  }
  if (!value->is_string()) {
    return fail(ErrorCode::kInvalidRequest, quoted(name) + " must be a string");
  }

  boost::json::string& text = value->as_string();
  Secret secret(std::string(text.data(), text.size()));
  secureZero(text.data(), text.size());
  return std::optional<Secret>(std::move(secret));
}

}  // namespace keystore::admin
