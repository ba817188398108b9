// JSON representations of stored records as the management API returns them. Times are
// RFC 3339 text, or null where the record holds 0 ("unset"). Nothing here renders a secret:
// credentials appear as mask and fingerprint, tokens by id and hint.
//
// Free functions on values, thread-safe.
#pragma once

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>
#include <cstdint>
#include <string>
#include <string_view>

#include "catalog/catalog.h"
#include "common/error.h"
#include "store/records.h"

namespace keystore::admin {

// An RFC 3339 string, or null for 0.
boost::json::value renderTime(int64_t unix_millis);

// The exact decimal form of an amount of micro-dollars, without trailing zeros: 150000 ->
// "0.15", 3000000 -> "3", 1 -> "0.000001". It reads back to the same amount through
// metering::parseDollarAmount.
std::string decimalDollars(int64_t micros);

// A project with its rate-limit defaults and budget (null where unset).
boost::json::object renderProject(const store::Project& project,
                                  const store::ProjectLimits& limits);
boost::json::object renderAgent(const store::Agent& agent);
// `now` decides the derived status: "revoked", "expired" or "active".
boost::json::object renderToken(const store::AgentToken& token, int64_t now);
boost::json::object renderLedgerRow(const store::LedgerRow& row);

// {"input_tokens": n, …}: every unit of kUsageUnits, zeros included.
boost::json::object renderUnits(const store::UnitCounts& units);

// One row of the price table; a null model is the provider's default for the unit.
boost::json::object renderPrice(const store::Price& price);

// One group of a usage report: key, requests (ledger rows), units, cost_micros (every row at
// list price), billable_micros (the marketplace part) and byok_micros (the part the provider
// bills). REQUIRES: the billable and BYOK costs add up to no more than INT64_MAX.
boost::json::object renderUsageRow(const store::UsageReportRow& row);
// The same without the key, for the total of a report.
boost::json::object renderUsageTotal(const store::UsageReportRow& row);

// A monthly invoice: its lines, what Keystore bills (total_billed_micros) and every line at
// list price (total_list_price_micros). `month` is its "YYYY-MM" name. REQUIRES: the billed and
// BYOK totals add up to no more than INT64_MAX.
boost::json::object renderInvoice(const store::Invoice& invoice, std::string_view month);

// One catalog provider as configured in a project. `setting` and `credential` are null when
// the project has none, and the status is then "not_configured".
boost::json::object renderProviderEntry(const catalog::ProviderSpec& spec,
                                        const store::ProviderSetting* setting,
                                        const store::Credential* credential);

// One catalog entry for GET /catalog: id, names, tier, auth scheme, credential fields (empty
// for one plain key) and metering kind.
boost::json::object renderCatalogEntry(const catalog::ProviderSpec& spec);

// A marketplace pool credential: mask and fingerprint, never the key. `health` is the proxy's
// circuit state of it, {state, consecutive_failures, opened_at}.
boost::json::object renderPoolCredential(const store::Credential& credential,
                                         boost::json::object health);

boost::json::object renderConciergeRequest(const store::ConciergeRequest& request);

// An admin API key by id, name and hint; `now` decides the derived status like renderToken.
boost::json::object renderAdminKey(const store::AdminKey& key, int64_t now);

// {"error": {"type": "keystore_error", "code", "message", "request_id"}}.
boost::json::object renderError(const Error& error, std::string_view request_id);

}  // namespace keystore::admin
