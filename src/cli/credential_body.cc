#include "cli/credential_body.h"


#include <algorithm>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include "cli/secret_input.h"
#include "common/secure_zero.h"

namespace keystore::cli {

namespace {

void wipeStrings(boost::json::value& value) {
  if (value.is_string()) {
    boost::json::string& text = value.as_string();
    secureZero(text.data(), text.size());
    return;
  }
  if (value.is_object()) {
    for (auto& member : value.as_object()) {
      wipeStrings(member.value());
    }
  } else if (value.is_array()) {
    for (boost::json::value& entry : value.as_array()) {
      wipeStrings(entry);
    }
  }
}

bool startsLikeObject(std::string_view text) {
  size_t first = text.find_first_not_of(" \t\r\n");
  return first != std::string_view::npos && text[first] == '{';
}

}  // namespace

Result<Secret> readCredentialBody(std::string_view prompt, boost::json::object fields) {
  Result<Secret> input = readSecret(prompt);
  if (!input) {
    return std::unexpected(input.error());
  }

  if (!startsLikeObject(input->reveal())) {
    fields["api_key"] = input->reveal();
  } else {
    boost::system::error_code error;
    boost::json::value parsed = boost::json::parse(input->reveal(), error);
    if (error || !parsed.is_object()) {
      return fail(ErrorCode::kInvalidRequest,
                  "the input starts with '{' but is not a JSON object; send a credential with "
                  "several fields as one JSON object, such as {\"account_sid\": \"…\", "
                  "\"auth_token\": \"…\"}, or a plain key");
    }
    fields["credential"] = parsed;
    wipeStrings(parsed);
  }

  Secret body(boost::json::serialize(fields));
  boost::json::value everything(std::move(fields));
  wipeStrings(everything);
  return body;
}

bool isProviderIdShaped(std::string_view text) {
  return !text.empty() && text.size() <= 64 && std::all_of(text.begin(), text.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
  });
}

}  // namespace keystore::cli
