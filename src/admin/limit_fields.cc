#include "admin/limit_fields.h"

#include <string>

namespace keystore::admin {

namespace {

// Reads an integer or null and checks that an integer lies in [minimum, maximum]. `range`
// describes the range for the error message.
Result<OptionalField<int64_t>> readBounded(const boost::json::object& body, std::string_view name,
                                           int64_t minimum, int64_t maximum,
                                           std::string_view range) {
  Result<OptionalField<int64_t>> field = readInteger(body, name, true);
  if (!field) {
    return field;
  }
  if (field->value && (*field->value < minimum || *field->value > maximum)) {
    return fail(ErrorCode::kInvalidRequest,
                "\"" + std::string(name) + "\" must be " + std::string(range));
  }
  return field;
}

}  // namespace

Result<OptionalField<int64_t>> readRateLimit(const boost::json::object& body,
                                             std::string_view name) {
  return readBounded(body, name, 1, kMaxRateLimit, "from 1 to 1000000000, or null to clear it");
}

Result<OptionalField<int64_t>> readBudgetCents(const boost::json::object& body,
                                               std::string_view name) {
  return readBounded(body, name, 0, kMaxBudgetCents,
                     "a whole number of cents from 0 to 1000000000000, or null to clear it");
}

Result<OptionalField<int64_t>> readWarnPercent(const boost::json::object& body,
                                               std::string_view name) {
  return readBounded(body, name, 1, 100, "a percentage from 1 to 100, or null to clear it");
}

}  // namespace keystore::admin
