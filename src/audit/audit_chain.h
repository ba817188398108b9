// The audit trail's hash chain: the canonical serialization of an entry, its hash, and the
// check that a sequence of stored entries is the unbroken chain that was written.
//
// Every entry's hash is SHA-256 over a versioned, length-prefixed serialization of all its
// fields except seq and hash, plus the previous entry's hash. Editing any field of an entry,
// or removing or moving one, therefore breaks the chain at that point. seq is left out on purpose:
// the order is carried by prev_hash alone, which lets the check tell an entry that is intact
// but in the wrong place ("reordered") from one whose content changed ("edited").
//
// NOTE: a chain cannot show that entries were cut off its end; the newest entries can be
// deleted without a trace unless their hash was recorded elsewhere.
//
// Free functions on values, thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "store/records.h"

namespace keystore::audit {

// The prev_hash of the first entry: 64 zeros.
inline constexpr std::string_view kGenesisHash =
    "0000000000000000000000000000000000000000000000000000000000000000";

// The bytes that an entry's hash covers, with `prev_hash` as its link to the previous entry.
std::string canonicalSerialization(const store::AuditEntry& entry, std::string_view prev_hash);

// SHA-256, as 64 lowercase hex digits, of canonicalSerialization(entry, prev_hash).
std::string entryHash(const store::AuditEntry& entry, std::string_view prev_hash);

// The outcome of a chain check. When ok is false, first_bad_seq is the seq of the first entry
// that fails, and problem names the kind of damage:
// - "edited": an entry's content no longer matches its hash, or an entry was rewritten and
//   re-hashed, which breaks the link of the entry after it (first_bad_seq is then the
//   rewritten entry's);
// - "removed": an entry's predecessor is missing (a gap in seq before it);
// - "reordered": an entry is intact but linked to an entry that now comes after it.
struct ChainReport {
  bool ok = true;
  int64_t entries = 0;  // entries checked
  int64_t first_bad_seq = 0;
  std::string problem;  // "" | "edited" | "removed" | "reordered"
};

// Checks a chain fed in seq order, one page at a time, without holding every entry: it keeps
// only each entry's seq and hash so that a broken link can be classified.
class ChainVerifier {
 public:
  // Feeds the next entries, in seq order, after those fed before.
  void add(std::span<const store::AuditEntry> entries);
  // The verdict on everything fed so far.
  ChainReport finish() const;

 private:
  struct Link {
    int64_t seq = 0;
    std::string hash;
    std::string prev_hash;
    bool content_intact = true;
  };
  std::vector<Link> links_;
  std::unordered_map<std::string, size_t> position_by_hash_;  // index into links_
};

// Checks a whole chain held in memory, in seq order.
ChainReport verifyChain(std::span<const store::AuditEntry> entries);

}  // namespace keystore::audit
