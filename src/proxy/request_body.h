// RequestBodySummary: everything the proxy's metering reads from a request body, read in one
// pass over the body. That is the model, an array body's size, the output bounds for the
// worst-case estimate, and the streaming options for the usage rewrite.
//
// The separate readers (metering::readRequestBody, limits::readOutputRequest and
// metering::addStreamUsageOption) each scan the body, and they differ on malformed input: some
// stop early, one accepts invalid UTF-8 and nests deeper. summarizeRequestBody gives exactly
// their results. A body that parses as strict JSON nested at most metering::kMaxJsonDepth
// deep takes the one pass, and any other body falls back to the separate readers.
//
// Thread-safety: pure functions.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "limits/cost_estimate.h"
#include "metering/usage_body.h"
#include "metering/usage_stream_options.h"

namespace keystore::proxy {

struct RequestBodySummary {
  metering::RequestBodyFacts facts;  // as metering::readRequestBody reads them
  limits::OutputRequest output;      // as limits::readOutputRequest reads it
  // Set when the one pass parsed the body, and nullopt when the body fell back to the
  // separate readers.
  std::optional<metering::StreamOptionsFacts> stream_options;
};

RequestBodySummary summarizeRequestBody(std::string_view body);

// metering::addStreamUsageOption(body), without scanning the body again when `summary` came
// from the one pass over the same body.
std::optional<std::string> addStreamUsageOption(std::string_view body,
                                                const RequestBodySummary& summary);

}  // namespace keystore::proxy
