#include "admin/json_render.h"

#include <boost/json/array.hpp>
#include <boost/json/parse.hpp>

#include "common/clock.h"
#include "tokens/agent_token.h"

namespace keystore::admin {

namespace {

boost::json::value optionalInteger(const std::optional<int64_t>& value) {
  if (!value) {
    return nullptr;
  }
  return *value;
}

boost::json::value nullIfEmpty(const std::string& text) {
  if (text.empty()) {
    return nullptr;
  }
  return boost::json::string(text);
}

// A ledger row's recorded prices as an object from unit name to micro-dollars per million
// units; {} for a row that applied no price.
boost::json::object renderRowPrices(const std::string& prices) {
  if (prices.empty()) {
    return {};
  }
  boost::system::error_code error;
  boost::json::value parsed = boost::json::parse(prices, error);
  // NOTE: the ledger writer only stores objects; anything else renders as {} rather than
  // failing the whole ledger page.
  if (error || !parsed.is_object()) {
    return {};
  }
  return std::move(parsed.as_object());
}

std::string_view lifetimeStatus(int64_t revoked_at, int64_t expires_at, int64_t now) {
  if (revoked_at != 0) {
    return "revoked";
  }
  if (expires_at != 0 && expires_at <= now) {
    return "expired";
  }
  return "active";
}

std::string_view authSchemeName(catalog::AuthSpec::Scheme scheme) {
  switch (scheme) {
    case catalog::AuthSpec::Scheme::kBearer:
      return "bearer";
    case catalog::AuthSpec::Scheme::kHeader:
      return "header";
    case catalog::AuthSpec::Scheme::kBasic:
      return "basic";
    case catalog::AuthSpec::Scheme::kQuery:
      return "query";
  }
  return "unknown";
}

}  // namespace

boost::json::value renderTime(int64_t unix_millis) {
  if (unix_millis == 0) {
    return nullptr;
  }
  return boost::json::string(formatRfc3339(unix_millis));
}

std::string decimalDollars(int64_t micros) {
  constexpr int64_t kMicrosPerDollar = 1'000'000;
  // Negated in unsigned arithmetic, so that the most negative int64 has a magnitude too.
  uint64_t magnitude = micros < 0 ? 0 - static_cast<uint64_t>(micros) : micros;
  std::string text = micros < 0 ? "-" : "";
  text += std::to_string(magnitude / kMicrosPerDollar);

  uint64_t fraction = magnitude % kMicrosPerDollar;
  if (fraction == 0) {
    return text;
  }
  std::string digits = std::to_string(fraction);
  digits.insert(0, 6 - digits.size(), '0');
  digits.erase(digits.find_last_not_of('0') + 1);
  return text + "." + digits;
}

boost::json::object renderProject(const store::Project& project,
                                  const store::ProjectLimits& limits) {
  return {
      {"id", project.id},
      {"name", project.name},
      {"organization_id", project.organization_id},
      {"default_rpm", optionalInteger(limits.default_rpm)},
      {"default_rpd", optionalInteger(limits.default_rpd)},
      {"default_tpm", optionalInteger(limits.default_tpm)},
      {"budget_cents", optionalInteger(limits.budget_cents)},
      {"budget_warn_percent", optionalInteger(limits.budget_warn_percent)},
      {"created_at", renderTime(project.created_at)},
  };
}

boost::json::object renderAgent(const store::Agent& agent) {
  return {
      {"id", agent.id},
      {"project_id", agent.project_id},
      {"name", agent.name},
      {"status", agent.status},
      {"rpm_limit", optionalInteger(agent.rpm_limit)},
      {"rpd_limit", optionalInteger(agent.rpd_limit)},
      {"tpm_limit", optionalInteger(agent.tpm_limit)},
      {"budget_cents", optionalInteger(agent.budget_cents)},
      {"budget_warn_percent", optionalInteger(agent.budget_warn_percent)},
      {"created_at", renderTime(agent.created_at)},
  };
}

boost::json::object renderToken(const store::AgentToken& token, int64_t now) {
  boost::json::array scopes;
  for (const std::string& scope : token.scopes) {
    scopes.emplace_back(scope);
  }
  boost::json::array models;
  for (const std::string& model : token.models) {
    models.emplace_back(model);
  }
  return {
      {"id", token.id},
      {"agent_id", token.agent_id},
      {"project_id", token.project_id},
      {"hint", tokens::tokenHint(token.token_hash)},
      {"scopes", std::move(scopes)},
      {"models", std::move(models)},
      {"status", lifetimeStatus(token.revoked_at, token.expires_at, now)},
      {"expires_at", renderTime(token.expires_at)},
      {"revoked_at", renderTime(token.revoked_at)},
      {"created_at", renderTime(token.created_at)},
      {"last_used_at", renderTime(token.last_used_at)},
      {"rotated_from", nullIfEmpty(token.rotated_from)},
      {"rotated_to", nullIfEmpty(token.rotated_to)},
  };
}

boost::json::object renderLedgerRow(const store::LedgerRow& row) {
  return {
      {"time", renderTime(row.time)},
      {"request_id", row.request_id},
      {"project_id", row.project_id},
      {"agent_id", row.agent_id},
      {"token_id", row.token_id},
      {"provider", row.provider},
      {"mode", row.mode},
      {"credential_id", nullIfEmpty(row.credential_id)},
      {"method", row.method},
      {"path", row.path},
      {"upstream_status", row.upstream_status},
      {"outcome", row.outcome},
      {"bytes_in", row.bytes_in},
      {"bytes_out", row.bytes_out},
      {"latency_ms", row.latency_ms},
      {"model", nullIfEmpty(row.model)},
      {"units", renderUnits(row.units)},
      {"usage_reported", row.usage_reported},
      {"prices", renderRowPrices(row.prices)},
      {"cost_micros", row.cost_micros},
      {"billable", row.billable},
  };
}

boost::json::object renderUnits(const store::UnitCounts& units) {
  boost::json::object rendered;
  for (size_t i = 0; i < store::kUsageUnits.size(); ++i) {
    rendered[store::kUsageUnits[i]] = units.*store::kUnitCountFields[i];
  }
  return rendered;
}

boost::json::object renderPrice(const store::Price& price) {
  return {
      {"id", price.id},
      {"provider", price.provider},
      {"model", nullIfEmpty(price.model)},
      {"unit", price.unit},
      {"usd_per_million", decimalDollars(price.micros_per_million)},
      {"micros_per_million", price.micros_per_million},
      {"effective_from", renderTime(price.effective_from)},
      {"created_at", renderTime(price.created_at)},
  };
}

boost::json::object renderUsageRow(const store::UsageReportRow& row) {
  boost::json::object rendered{{"key", row.key}};
  for (auto& member : renderUsageTotal(row)) {
    rendered.emplace(member.key(), std::move(member.value()));
  }
  return rendered;
}

boost::json::object renderUsageTotal(const store::UsageReportRow& row) {
  return {
      {"requests", row.request_count},
      {"units", renderUnits(row.units)},
      {"cost_micros", row.billable_cost_micros + row.byok_cost_micros},
      {"billable_micros", row.billable_cost_micros},
      {"byok_micros", row.byok_cost_micros},
  };
}

boost::json::object renderInvoice(const store::Invoice& invoice, std::string_view month) {
  boost::json::array lines;
  for (const store::InvoiceLine& line : invoice.lines) {
    lines.push_back(boost::json::object{
        {"provider", line.provider},
        {"model", nullIfEmpty(line.model)},
        {"unit", line.unit},
        {"units", line.units},
        {"micros_per_million", line.micros_per_million},
        {"usd_per_million", decimalDollars(line.micros_per_million)},
        {"cost_micros", line.cost_micros},
        {"billed_micros", line.billed_micros},
        {"mode", line.billable ? "marketplace" : "byok"},
    });
  }
  return {
      {"project_id", invoice.project_id},
      {"month", month},
      {"period_start", renderTime(invoice.month_start)},
      {"period_end", renderTime(invoice.month_end)},
      {"lines", std::move(lines)},
      {"total_billed_micros", invoice.billed_micros},
      {"total_list_price_micros", invoice.billed_micros + invoice.byok_list_micros},
  };
}

boost::json::object renderProviderEntry(const catalog::ProviderSpec& spec,
                                        const store::ProviderSetting* setting,
                                        const store::Credential* credential) {
  // `key` is the mask alone, so tables and scripts can show it as is; the other key_*
  // fields describe the stored credential without revealing it.
  boost::json::value key = nullptr;
  boost::json::value key_fingerprint = nullptr;
  boost::json::value key_set_at = nullptr;
  boost::json::value key_label = nullptr;
  if (credential != nullptr) {
    key = boost::json::string(credential->mask);
    key_fingerprint = boost::json::string(credential->fingerprint);
    key_set_at = renderTime(credential->created_at);
    key_label = nullIfEmpty(credential->label);
  }

  boost::json::value mode = nullptr;
  std::string_view status = "not_configured";
  if (setting != nullptr) {
    mode = boost::json::string(setting->mode);
    status = setting->status;
  }

  return {
      {"provider", spec.id},
      {"display_name", spec.display_name},
      {"category", spec.category},
      {"availability", catalog::availabilityName(spec.availability)},
      {"mode", std::move(mode)},
      {"status", status},
      {"key", std::move(key)},
      {"key_fingerprint", std::move(key_fingerprint)},
      {"key_set_at", std::move(key_set_at)},
      {"key_label", std::move(key_label)},
  };
}

boost::json::object renderCatalogEntry(const catalog::ProviderSpec& spec) {
  boost::json::array fields;
  for (const std::string& field : spec.credential_fields) {
    fields.emplace_back(field);
  }
  return {
      {"id", spec.id},
      {"display_name", spec.display_name},
      {"category", spec.category},
      {"availability", catalog::availabilityName(spec.availability)},
      {"auth_scheme", authSchemeName(spec.auth.scheme)},
      {"credential_fields", std::move(fields)},
      {"metering", spec.metering},
  };
}

boost::json::object renderPoolCredential(const store::Credential& credential,
                                         boost::json::object health) {
  return {
      {"id", credential.id},
      {"provider", credential.provider},
      {"scope", credential.scope},
      {"project_id", nullIfEmpty(credential.project_id)},
      {"status", credential.status},
      {"label", nullIfEmpty(credential.label)},
      {"key", credential.mask},
      {"key_fingerprint", credential.fingerprint},
      {"rpm_limit", credential.rpm_limit},
      {"created_at", renderTime(credential.created_at)},
      {"health", std::move(health)},
  };
}

boost::json::object renderConciergeRequest(const store::ConciergeRequest& request) {
  return {
      {"id", request.id},
      {"project_id", request.project_id},
      {"provider", request.provider},
      {"note", nullIfEmpty(request.note)},
      {"status", request.status},
      {"reason", nullIfEmpty(request.reason)},
      {"credential_id", nullIfEmpty(request.credential_id)},
      {"created_at", renderTime(request.created_at)},
      {"updated_at", renderTime(request.updated_at)},
  };
}

boost::json::object renderAdminKey(const store::AdminKey& key, int64_t now) {
  return {
      {"id", key.id},
      {"name", key.name},
      {"role", key.role},
      {"operator", key.is_operator},
      {"organization_id", key.organization_id},
      {"user_id", key.user_id.empty() ? boost::json::value(nullptr) : boost::json::value(key.user_id)},
      {"project_id",
       key.project_id.empty() ? boost::json::value(nullptr) : boost::json::value(key.project_id)},
      {"hint", tokens::tokenHint(key.key_hash)},
      {"status", lifetimeStatus(key.revoked_at, key.expires_at, now)},
      {"expires_at", renderTime(key.expires_at)},
      {"revoked_at", renderTime(key.revoked_at)},
      {"created_at", renderTime(key.created_at)},
  };
}

boost::json::object renderError(const Error& error, std::string_view request_id) {
  return {
      {"error",
       {
           {"type", "keystore_error"},
           {"code", errorCodeName(error.code)},
           {"message", error.message},
           {"request_id", request_id},
       }},
  };
}

}  // namespace keystore::admin
