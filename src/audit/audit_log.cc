#include "audit/audit_log.h"

#include <cstdlib>

namespace keystore::audit {

Result<store::AuditEntry> appendOperatorEntry(store::Store& store, store::AuditEntry entry) {
  if (entry.actor_kind.empty()) {
    entry.actor_kind = "operator_cli";
  }
  if (entry.actor.empty()) {
    const char* login = std::getenv("USER");
    entry.actor = login != nullptr && *login != '\0' ? "local:" + std::string(login) : "local";
  }
  if (entry.details.empty()) {
    entry.details = "{}";
  }
  return store.appendAudit(entry);
}

Result<ChainReport> verifyStoredChain(store::Store& store, int page_size) {
  ChainVerifier verifier;
  int64_t after_seq = 0;
  for (;;) {
    Result<std::vector<store::AuditEntry>> page = store.readAuditChain(after_seq, page_size);
    if (!page) {
      return std::unexpected(page.error());
    }
    if (page->empty()) {
      return verifier.finish();
    }
    verifier.add(*page);
    after_seq = page->back().seq;
  }
}

}  // namespace keystore::audit
