// Request bodies that carry a credential typed at a prompt or piped into standard input, for
// `provider set-key`, `pool add` and `concierge fulfill`. Internal to src/cli.
#pragma once

#include <boost/json/object.hpp>
#include <string_view>

#include "common/error.h"
#include "common/secret.h"

namespace keystore::cli {

// Reads the credential (see readSecret) and returns the JSON text of `fields` plus either
// "credential", when the input is a JSON object (a credential with several fields such as
// {"account_sid": "…", "auth_token": "…"}), or "api_key" with the input as one key. The parsed
// copies are wiped. kInvalidRequest when nothing was read or input starting with '{' is not a
// JSON object; the message never repeats the input.
Result<Secret> readCredentialBody(std::string_view prompt, boost::json::object fields);

// Checks a provider id given on the command line, so that a key typed in its place is neither
// sent in a URL nor echoed in an error message.
bool isProviderIdShaped(std::string_view text);

}  // namespace keystore::cli
