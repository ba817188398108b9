// Routes for the catalog, a project's provider settings and its BYOK credentials.
#include <algorithm>
#include <boost/json/array.hpp>

#include "admin/admin_api.h"
#include "admin/credential_input.h"
#include "admin/json_body.h"
#include "admin/json_render.h"
#include "admin/request_context.h"
#include "common/random.h"

namespace keystore::admin {

namespace {

// The active BYOK credential of `provider` among `credentials`: the newest with status
// "active", or null.
const store::Credential* findActive(const std::vector<store::Credential>& credentials,
                                    std::string_view provider) {
  const store::Credential* active = nullptr;
  for (const store::Credential& credential : credentials) {
    bool candidate = credential.provider == provider && credential.scope == "byok" &&
                     credential.status == "active";
    if (candidate && (active == nullptr || credential.created_at >= active->created_at)) {
      active = &credential;
    }
  }
  return active;
}

const store::ProviderSetting* findSetting(const std::vector<store::ProviderSetting>& settings,
                                          std::string_view provider) {
  for (const store::ProviderSetting& setting : settings) {
    if (setting.provider == provider) {
      return &setting;
    }
  }
  return nullptr;
}

Error unknownProvider(const std::string& provider) {
  return Error{ErrorCode::kUnknownProvider,
               "unknown provider " + provider +
                   "; GET /api/v1/projects/{project}/providers lists the providers"};
}

// The members of a PATCH or PUT body, checked before anything is written.
struct ProviderChange {
  std::optional<CredentialInput> credential;
  OptionalField<std::string> label;
  std::optional<std::string> mode;
  std::optional<std::string> status;
};

Result<ProviderChange> readProviderChange(boost::json::object& body,
                                          const catalog::ProviderSpec& spec) {
  ProviderChange change;

  Result<std::optional<CredentialInput>> credential = takeCredential(body, spec);
  if (!credential) {
    return std::unexpected(credential.error());
  }
  change.credential = std::move(*credential);

  Result<OptionalField<std::string>> label = readLabel(body);
  if (!label) {
    return std::unexpected(label.error());
  }
  change.label = std::move(*label);

  Result<OptionalField<std::string>> mode = readString(body, "mode");
  if (!mode) {
    return std::unexpected(mode.error());
  }
  if (mode->value && *mode->value != "byok" && *mode->value != "marketplace") {
    return fail(ErrorCode::kInvalidRequest, "\"mode\" must be \"byok\" or \"marketplace\"");
  }
  change.mode = mode->value;

  Result<OptionalField<std::string>> status = readString(body, "status");
  if (!status) {
    return std::unexpected(status.error());
  }
  if (status->value && *status->value != "enabled" && *status->value != "disabled") {
    return fail(ErrorCode::kInvalidRequest, "\"status\" must be \"enabled\" or \"disabled\"");
  }
  change.status = status->value;
  return change;
}

// The mode a project gets for a provider it has not configured: marketplace where that is the
// only choice, BYOK everywhere else.
std::string defaultMode(const catalog::ProviderSpec& spec) {
  return spec.availability == catalog::Availability::kMarketplace ? "marketplace" : "byok";
}

}  // namespace

Result<AdminApi::DataKeyMaterial> AdminApi::projectDataKey(const std::string& project_id,
                                                           std::string_view key_id) {
  Result<std::vector<store::DataKey>> keys = store_.listDataKeys();
  if (!keys) {
    return std::unexpected(keys.error());
  }

  const store::DataKey* chosen = nullptr;
  for (const store::DataKey& key : *keys) {
    bool candidate = key.project_id == project_id && (key_id.empty() || key.key_id == key_id);
    if (candidate && (chosen == nullptr || key.created_at >= chosen->created_at)) {
      chosen = &key;
    }
  }
  if (chosen == nullptr) {
    return fail(ErrorCode::kInternal, "project " + project_id + " has no data key" +
                                          (key_id.empty() ? "" : " " + std::string(key_id)));
  }

  Result<Secret> key = vault_.unwrapDataKey(project_id, chosen->key_id, chosen->wrapped);
  if (!key) {
    return std::unexpected(key.error());
  }
  return DataKeyMaterial{chosen->key_id, std::move(*key)};
}

Result<std::optional<store::Credential>> AdminApi::activeCredential(const std::string& project_id,
                                                                    const std::string& provider) {
  Result<std::vector<store::Credential>> credentials = store_.listCredentials(project_id);
  if (!credentials) {
    return std::unexpected(credentials.error());
  }
  const store::Credential* active = findActive(*credentials, provider);
  if (active == nullptr) {
    return std::optional<store::Credential>();
  }
  return std::optional<store::Credential>(*active);
}

Result<store::Credential> AdminApi::storeCredential(const store::Project& project,
                                                    const std::string& provider,
                                                    const CredentialInput& input,
                                                    const std::string& label, int64_t now) {
  Result<DataKeyMaterial> data_key = projectDataKey(project.id, "");
  if (!data_key) {
    return std::unexpected(data_key.error());
  }

  store::Credential credential;
  credential.id = newId("cred");
  credential.project_id = project.id;
  credential.provider = provider;
  credential.label = label;
  credential.mask = input.mask;
  credential.fingerprint = input.fingerprint;
  credential.data_key_id = data_key->key_id;
  credential.created_at = now;

  vault::CredentialBinding binding{project.id, provider, credential.id};
  Result<std::string> ciphertext =
      vault::Vault::encryptCredential(data_key->key, data_key->key_id, binding, input.plaintext);
  if (!ciphertext) {
    return std::unexpected(ciphertext.error());
  }
  credential.ciphertext = std::move(*ciphertext);

  if (auto stored = store_.putByokCredential(credential); !stored) {
    return std::unexpected(stored.error());
  }
  return credential;
}

Result<boost::json::object> AdminApi::providerEntry(const store::Project& project,
                                                    const catalog::ProviderSpec& spec) {
  Result<std::vector<store::ProviderSetting>> settings = store_.listProviderSettings(project.id);
  if (!settings) {
    return std::unexpected(settings.error());
  }
  Result<std::vector<store::Credential>> credentials = store_.listCredentials(project.id);
  if (!credentials) {
    return std::unexpected(credentials.error());
  }
  return renderProviderEntry(spec, findSetting(*settings, spec.id),
                             findActive(*credentials, spec.id));
}

Result<ApiResponse> AdminApi::listProviders(const RequestContext& context) {
  Result<store::Project> project = findProject(context, context.params[0]);
  if (!project) {
    return std::unexpected(project.error());
  }
  Result<std::vector<store::ProviderSetting>> settings = store_.listProviderSettings(project->id);
  if (!settings) {
    return std::unexpected(settings.error());
  }
  Result<std::vector<store::Credential>> credentials = store_.listCredentials(project->id);
  if (!credentials) {
    return std::unexpected(credentials.error());
  }

  boost::json::array items;
  for (const catalog::ProviderSpec& spec : catalog_.providers()) {
    items.push_back(renderProviderEntry(spec, findSetting(*settings, spec.id),
                                        findActive(*credentials, spec.id)));
  }
  return listResponse(std::move(items));
}

Result<ApiResponse> AdminApi::getProvider(const RequestContext& context) {
  Result<store::Project> project = findProject(context, context.params[0]);
  if (!project) {
    return std::unexpected(project.error());
  }
  const catalog::ProviderSpec* spec = findProvider(context.params[1]);
  if (spec == nullptr) {
    return std::unexpected(unknownProvider(context.params[1]));
  }

  Result<boost::json::object> entry = providerEntry(*project, *spec);
  if (!entry) {
    return std::unexpected(entry.error());
  }
  return jsonResponse(200, *entry);
}

Result<ApiResponse> AdminApi::putProviderKey(const RequestContext& context) {
  return changeProvider(context, true);
}

Result<ApiResponse> AdminApi::patchProvider(const RequestContext& context) {
  return changeProvider(context, false);
}

Result<ApiResponse> AdminApi::changeProvider(const RequestContext& context, bool key_route) {
  Result<store::Project> project = findProject(context, context.params[0]);
  if (!project) {
    return std::unexpected(project.error());
  }
  const catalog::ProviderSpec* spec = findProvider(context.params[1]);
  if (spec == nullptr) {
    return std::unexpected(unknownProvider(context.params[1]));
  }

  // Every member is checked before the first write, so a rejected request changes nothing.
  Result<boost::json::object> body = parseObjectBody(context.request.body);
  if (!body) {
    return std::unexpected(body.error());
  }
  auto known =
      key_route ? rejectUnknownMembers(*body, {"api_key", "credential", "label"})
                : rejectUnknownMembers(*body, {"api_key", "credential", "label", "mode", "status"});
  if (!known) {
    return std::unexpected(known.error());
  }
  Result<ProviderChange> change = readProviderChange(*body, *spec);
  if (!change) {
    return std::unexpected(change.error());
  }
  if (key_route && !change->credential) {
    return fail(ErrorCode::kInvalidRequest,
                "\"" + std::string(credentialMemberName(*spec)) + "\" is required");
  }
  if (!change->credential && !change->label.present && !change->mode && !change->status) {
    return fail(ErrorCode::kInvalidRequest, "nothing to change; send at least one of " +
                                                std::string(credentialMemberName(*spec)) +
                                                ", label, mode and status");
  }
  if (spec->availability == catalog::Availability::kMarketplace &&
      (change->credential || change->label.present)) {
    return fail(ErrorCode::kConflict,
                "provider " + spec->id +
                    " has availability marketplace: it takes no BYOK key; use mode marketplace, "
                    "which uses the operator's credentials");
  }

  Result<std::vector<store::ProviderSetting>> settings = store_.listProviderSettings(project->id);
  if (!settings) {
    return std::unexpected(settings.error());
  }
  const store::ProviderSetting* current_setting = findSetting(*settings, spec->id);
  Result<std::optional<store::Credential>> previous = activeCredential(project->id, spec->id);
  if (!previous) {
    return std::unexpected(previous.error());
  }
  if (!change->credential && change->label.present && !previous->has_value()) {
    return fail(ErrorCode::kByokKeyMissing,
                "no key is stored for " + spec->id + " in project " + project->name +
                    "; set one with PUT /api/v1/projects/" + project->name + "/providers/" +
                    spec->id + "/key before giving it a label");
  }

  bool new_setting = current_setting == nullptr &&
                     (change->credential.has_value() || change->mode || change->status);
  store::ProviderSetting setting;
  if (current_setting != nullptr) {
    setting = *current_setting;
  } else {
    setting.mode = defaultMode(*spec);
  }
  setting.project_id = project->id;
  setting.provider = spec->id;
  setting.mode = change->mode.value_or(setting.mode);
  setting.status = change->status.value_or(setting.status);
  setting.updated_at = context.now;
  // A requested mode is always checked. A stored one is checked again when the provider is
  // switched on, because the catalog's tier may have changed since it was chosen.
  bool enabling = setting.status == "enabled" && (new_setting || change->status);
  if (change->mode || enabling) {
    if (auto allowed = checkModeAllowed(*project, *spec, setting.mode); !allowed) {
      return std::unexpected(allowed.error());
    }
  }

  // Credential first, then the setting: a key stored without its setting is harmless, while
  // a provider enabled without its key would fail requests.
  std::string label = *previous ? (*previous)->label : "";
  if (change->label.present) {
    label = change->label.value.value_or("");
  }
  // Set when a new BYOK key replaced an existing one, which webhooks report as a rotation.
  std::optional<boost::json::object> rotated;
  if (change->credential) {
    Result<store::Credential> stored =
        storeCredential(*project, spec->id, *change->credential, label, context.now);
    if (!stored) {
      return std::unexpected(stored.error());
    }
    if (*previous) {
      rotated = boost::json::object{{"provider", spec->id},
                                    {"credential_id", stored->id},
                                    {"previous_credential_id", (*previous)->id},
                                    {"fingerprint", stored->fingerprint}};
    }
  } else if (change->label.present) {
    // Credentials are immutable rows bound to their id, so a new label means a new row
    // carrying the same key.
    const store::Credential& old = **previous;
    Result<DataKeyMaterial> old_key =
        projectDataKey(project->id, vault::ciphertextKeyId(old.ciphertext));
    if (!old_key) {
      return std::unexpected(old_key.error());
    }
    vault::CredentialBinding binding{project->id, spec->id, old.id};
    Result<Secret> plaintext =
        vault::Vault::decryptCredential(old_key->key, binding, old.ciphertext);
    if (!plaintext) {
      return std::unexpected(plaintext.error());
    }
    CredentialInput same{std::move(*plaintext), old.mask, old.fingerprint};
    Result<store::Credential> stored =
        storeCredential(*project, spec->id, same, label, context.now);
    if (!stored) {
      return std::unexpected(stored.error());
    }
  }

  if (change->mode || change->status || new_setting) {
    if (auto stored = store_.putProviderSetting(setting); !stored) {
      return std::unexpected(stored.error());
    }
  }
  notifyConfigChange();
  if (rotated) {
    publishEvent("credential.rotated", project->id, std::move(*rotated));
  }

  Result<boost::json::object> entry = providerEntry(*project, *spec);
  if (!entry) {
    return std::unexpected(entry.error());
  }
  return jsonResponse(200, *entry);
}

Result<void> AdminApi::checkModeAllowed(const store::Project& project,
                                        const catalog::ProviderSpec& spec,
                                        const std::string& mode) {
  using catalog::Availability;
  if (mode == "byok" && spec.availability == Availability::kMarketplace) {
    return fail(ErrorCode::kConflict,
                "provider " + spec.id +
                    " has availability marketplace: it has no BYOK mode; use mode marketplace");
  }
  if (mode != "marketplace") {
    return {};
  }
  if (spec.availability == Availability::kByok) {
    return fail(ErrorCode::kConflict,
                "provider " + spec.id +
                    " has availability byok: it has no marketplace credentials; use mode byok "
                    "with your own key");
  }
  if (spec.availability != Availability::kConcierge) {
    return {};
  }

  Result<std::vector<store::ConciergeRequest>> fulfilled =
      store_.listConciergeRequests(project.id, "fulfilled");
  if (!fulfilled) {
    return std::unexpected(fulfilled.error());
  }
  bool provisioned = std::any_of(
      fulfilled->begin(), fulfilled->end(),
      [&](const store::ConciergeRequest& request) { return request.provider == spec.id; });
  if (!provisioned) {
    return fail(ErrorCode::kConflict,
                "provider " + spec.id + " has availability concierge: marketplace mode needs a " +
                    "fulfilled concierge request; file one with POST /api/v1/projects/" +
                    project.name + "/concierge and wait for the operator, or use mode byok");
  }
  return {};
}

Result<ApiResponse> AdminApi::listCatalog(const RequestContext&) {
  boost::json::array items;
  for (const catalog::ProviderSpec& spec : catalog_.providers()) {
    items.push_back(renderCatalogEntry(spec));
  }
  return listResponse(std::move(items));
}

}  // namespace keystore::admin
