#include "audit/audit_chain.h"

#include "common/hash.h"

namespace keystore::audit {

namespace {

// Each field is written as its byte length, a colon, the bytes and a newline, so no choice of
// field contents can make two different entries serialize alike.
void appendField(std::string& out, std::string_view value) {
  out += std::to_string(value.size());
  out += ':';
  out += value;
  out += '\n';
}

ChainReport failure(int64_t entries, int64_t seq, std::string problem) {
  return ChainReport{
      .ok = false, .entries = entries, .first_bad_seq = seq, .problem = std::move(problem)};
}

}  // namespace

std::string canonicalSerialization(const store::AuditEntry& entry, std::string_view prev_hash) {
  // The version tag lets a later format change hash old entries the old way.
  std::string out = "keystore-audit-v1\n";
  appendField(out, entry.id);
  appendField(out, std::to_string(entry.time));
  appendField(out, entry.organization_id);
  appendField(out, entry.project_id);
  appendField(out, entry.actor);
  appendField(out, entry.actor_kind);
  appendField(out, entry.action);
  appendField(out, entry.target);
  appendField(out, entry.source_address);
  appendField(out, entry.request_id);
  appendField(out, entry.details);
  appendField(out, prev_hash);
  return out;
}

std::string entryHash(const store::AuditEntry& entry, std::string_view prev_hash) {
  return sha256Hex(canonicalSerialization(entry, prev_hash));
}

void ChainVerifier::add(std::span<const store::AuditEntry> entries) {
  for (const store::AuditEntry& entry : entries) {
    bool intact = entryHash(entry, entry.prev_hash) == entry.hash;
    position_by_hash_.emplace(entry.hash, links_.size());
    links_.push_back(Link{.seq = entry.seq,
                          .hash = entry.hash,
                          .prev_hash = entry.prev_hash,
                          .content_intact = intact});
  }
}

ChainReport ChainVerifier::finish() const {
  const auto count = static_cast<int64_t>(links_.size());
  for (size_t i = 0; i < links_.size(); ++i) {
    const Link& link = links_[i];
    if (!link.content_intact) {
      return failure(count, link.seq, "edited");
    }

    std::string_view expected_prev = i == 0 ? kGenesisHash : std::string_view(links_[i - 1].hash);
    if (link.prev_hash == expected_prev) {
      continue;
    }

    auto linked = position_by_hash_.find(link.prev_hash);
    if (linked != position_by_hash_.end() && linked->second > i) {
      return failure(count, link.seq, "reordered");
    }
    // The store numbers entries 1, 2, 3, … without gaps, so a gap before a broken link means
    // the entries in it were deleted.
    int64_t expected_seq = i == 0 ? 1 : links_[i - 1].seq + 1;
    if (link.seq != expected_seq) {
      return failure(count, link.seq, "removed");
    }
    // No gap: the predecessor was rewritten with a fresh hash of its own, which hides the edit
    // from its own check but not from this link.
    return failure(count, i == 0 ? link.seq : links_[i - 1].seq, "edited");
  }
  return ChainReport{.ok = true, .entries = count, .first_bad_seq = 0, .problem = ""};
}

ChainReport verifyChain(std::span<const store::AuditEntry> entries) {
  ChainVerifier verifier;
  verifier.add(entries);
  return verifier.finish();
}

}  // namespace keystore::audit
