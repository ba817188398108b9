// Token-usage extractors for the `openai` and `anthropic` metering kinds; usage.h states what
// each one counts.
//
// Thread-safety: one extractor per request; not shared.
#pragma once

#include <memory>
#include <string>

#include "metering/usage.h"

namespace keystore::metering {

// `request_model` is the request body's `model`, used when the response names none.
std::unique_ptr<UsageExtractor> makeOpenAiExtractor(std::string request_model);
std::unique_ptr<UsageExtractor> makeAnthropicExtractor(std::string request_model);

}  // namespace keystore::metering
