// Routes for the operator's marketplace pools: shared and dedicated credentials per provider.
#include <boost/json/array.hpp>

#include "admin/admin_api.h"
#include "admin/credential_input.h"
#include "admin/json_body.h"
#include "admin/json_render.h"
#include "admin/request_context.h"
#include "common/random.h"

namespace keystore::admin {

namespace {

Error unknownProvider(const std::string& provider) {
  return Error{ErrorCode::kUnknownProvider,
               "unknown provider " + provider + "; GET /api/v1/catalog lists the providers"};
}

// kConflict when the provider's tier has no marketplace credentials at all.
Result<void> checkHasPool(const catalog::ProviderSpec& spec) {
  if (spec.availability == catalog::Availability::kByok) {
    return fail(ErrorCode::kConflict, "provider " + spec.id +
                                          " has availability byok: projects use their own keys "
                                          "for it, so it has no marketplace pool");
  }
  return {};
}

Error poolCredentialNotFound(const std::string& credential_id) {
  return Error{ErrorCode::kNotFound, "pool credential " + credential_id + " not found"};
}

}  // namespace

Result<AdminApi::DataKeyMaterial> AdminApi::poolDataKey(int64_t now) {
  // A candidate is wrapped on every call, because the store keeps the first one stored and
  // several instances may race to create it.
  store::DataKey candidate{"", newId("dk"), vault_.masterKeyId(), {}, now};
  Secret key = vault::Vault::newDataKey();
  Result<std::string> wrapped = vault_.wrapDataKey("", candidate.key_id, key);
  if (!wrapped) {
    return std::unexpected(wrapped.error());
  }
  // The wrapping key's id comes from the wrapped bytes, which a keyring reload cannot change
  // between reading the id and wrapping.
  candidate.master_key_id = std::string(vault::ciphertextKeyId(*wrapped));
  candidate.wrapped = std::move(*wrapped);

  Result<store::DataKey> stored = store_.ensurePoolDataKey(candidate);
  if (!stored) {
    return std::unexpected(stored.error());
  }
  if (stored->key_id == candidate.key_id) {
    return DataKeyMaterial{stored->key_id, std::move(key)};
  }
  Result<Secret> existing = vault_.unwrapDataKey("", stored->key_id, stored->wrapped);
  if (!existing) {
    return std::unexpected(existing.error());
  }
  return DataKeyMaterial{stored->key_id, std::move(*existing)};
}

Result<store::Credential> AdminApi::sealPoolCredential(
    const CredentialInput& input, const std::string& scope, const std::string& project_id,
    const std::string& provider, const std::string& label, int64_t rpm_limit, int64_t now) {
  Result<DataKeyMaterial> data_key = poolDataKey(now);
  if (!data_key) {
    return std::unexpected(data_key.error());
  }

  store::Credential credential;
  credential.id = newId("cred");
  credential.project_id = project_id;
  credential.provider = provider;
  credential.scope = scope;
  credential.status = "active";
  credential.label = label;
  credential.mask = input.mask;
  credential.fingerprint = input.fingerprint;
  credential.data_key_id = data_key->key_id;
  credential.created_at = now;
  credential.rpm_limit = rpm_limit;

  // A dedicated credential is bound to its project, so its row cannot be moved to another.
  vault::CredentialBinding binding{project_id, provider, credential.id};
  Result<std::string> ciphertext =
      vault::Vault::encryptCredential(data_key->key, data_key->key_id, binding, input.plaintext);
  if (!ciphertext) {
    return std::unexpected(ciphertext.error());
  }
  credential.ciphertext = std::move(*ciphertext);
  return credential;
}

boost::json::object AdminApi::poolEntry(const store::Credential& credential) const {
  CredentialHealth health;
  if (options_.credential_health) {
    health = options_.credential_health(credential.id);
  }
  boost::json::object rendered{
      {"state", health.state},
      {"consecutive_failures", health.consecutive_failures},
      {"opened_at", renderTime(health.opened_at)},
  };
  return renderPoolCredential(credential, std::move(rendered));
}

Result<ApiResponse> AdminApi::addPoolCredential(const RequestContext& context) {
  if (auto allowed = requireOperator(context); !allowed) {
    return std::unexpected(allowed.error());
  }
  const catalog::ProviderSpec* spec = findProvider(context.params[0]);
  if (spec == nullptr) {
    return std::unexpected(unknownProvider(context.params[0]));
  }

  Result<boost::json::object> body = parseObjectBody(context.request.body);
  if (!body) {
    return std::unexpected(body.error());
  }
  auto known = rejectUnknownMembers(
      *body, {"scope", "project", "api_key", "credential", "label", "rpm_limit"});
  if (!known) {
    return std::unexpected(known.error());
  }
  Result<std::optional<CredentialInput>> input = takeCredential(*body, *spec);
  if (!input) {
    return std::unexpected(input.error());
  }
  if (!*input) {
    return fail(ErrorCode::kInvalidRequest,
                "\"" + std::string(credentialMemberName(*spec)) + "\" is required");
  }
  Result<std::string> scope = readRequiredString(*body, "scope");
  if (!scope) {
    return std::unexpected(scope.error());
  }
  if (*scope != "shared" && *scope != "dedicated") {
    return fail(ErrorCode::kInvalidRequest, "\"scope\" must be \"shared\" or \"dedicated\"");
  }
  Result<OptionalField<std::string>> project_name = readString(*body, "project");
  if (!project_name) {
    return std::unexpected(project_name.error());
  }
  if (*scope == "dedicated" && !project_name->value) {
    return fail(ErrorCode::kInvalidRequest,
                "\"project\" is required for a dedicated credential; name the project it serves");
  }
  if (*scope == "shared" && project_name->present) {
    return fail(ErrorCode::kInvalidRequest,
                "a shared credential serves every project; send \"project\" only with scope "
                "\"dedicated\"");
  }
  Result<OptionalField<std::string>> label = readLabel(*body);
  if (!label) {
    return std::unexpected(label.error());
  }
  Result<int64_t> rpm_limit = readRpmLimit(*body);
  if (!rpm_limit) {
    return std::unexpected(rpm_limit.error());
  }
  if (auto has_pool = checkHasPool(*spec); !has_pool) {
    return std::unexpected(has_pool.error());
  }

  std::string project_id;
  if (*scope == "dedicated") {
    Result<store::Project> project = findProjectForOperator(context, *project_name->value);
    if (!project) {
      return std::unexpected(project.error());
    }
    project_id = project->id;
  }

  Result<store::Credential> credential = sealPoolCredential(
      **input, *scope, project_id, spec->id, label->value.value_or(""), *rpm_limit, context.now);
  if (!credential) {
    return std::unexpected(credential.error());
  }
  if (auto stored = store_.addPoolCredential(*credential); !stored) {
    return std::unexpected(stored.error());
  }
  notifyConfigChange();
  return jsonResponse(201, poolEntry(*credential));
}

Result<ApiResponse> AdminApi::listPools(const RequestContext& context) {
  if (auto allowed = requireOperator(context); !allowed) {
    return std::unexpected(allowed.error());
  }
  std::string provider = context.queryValue("provider").value_or("");
  if (!provider.empty() && findProvider(provider) == nullptr) {
    return std::unexpected(unknownProvider(provider));
  }

  Result<std::vector<store::Credential>> credentials = store_.listPoolCredentials(provider);
  if (!credentials) {
    return std::unexpected(credentials.error());
  }
  boost::json::array items;
  for (const store::Credential& credential : *credentials) {
    items.push_back(poolEntry(credential));
  }
  return listResponse(std::move(items));
}

Result<ApiResponse> AdminApi::disablePoolCredential(const RequestContext& context) {
  return setPoolCredentialStatus(context, "disabled");
}

Result<ApiResponse> AdminApi::enablePoolCredential(const RequestContext& context) {
  return setPoolCredentialStatus(context, "active");
}

Result<ApiResponse> AdminApi::setPoolCredentialStatus(const RequestContext& context,
                                                      const std::string& status) {
  if (auto allowed = requireOperator(context); !allowed) {
    return std::unexpected(allowed.error());
  }
  if (!context.request.body.empty()) {
    Result<boost::json::object> body = parseObjectBody(context.request.body);
    if (!body) {
      return std::unexpected(body.error());
    }
    if (auto known = rejectUnknownMembers(*body, {}); !known) {
      return std::unexpected(known.error());
    }
  }

  const std::string& credential_id = context.params[0];
  // BYOK credentials belong to their projects; the pool routes do not reach them.
  Result<store::Credential> current = store_.getCredential(credential_id);
  if (!current && current.error().code == ErrorCode::kNotFound) {
    return std::unexpected(poolCredentialNotFound(credential_id));
  }
  if (!current) {
    return std::unexpected(current.error());
  }
  if (current->scope == "byok") {
    return std::unexpected(poolCredentialNotFound(credential_id));
  }

  Result<store::Credential> updated = store_.setCredentialStatus(credential_id, status);
  if (!updated && updated.error().code == ErrorCode::kNotFound) {
    return std::unexpected(poolCredentialNotFound(credential_id));
  }
  if (!updated) {
    return std::unexpected(updated.error());
  }
  notifyConfigChange();
  return jsonResponse(200, poolEntry(*updated));
}

}  // namespace keystore::admin
