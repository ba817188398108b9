// Hashing and verification of the audit chain, on entries built in memory.
#include "audit/audit_chain.h"

#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

namespace keystore::audit {
namespace {

store::AuditEntry makeEntry(int64_t seq, std::string action) {
  store::AuditEntry entry;
  entry.seq = seq;
  entry.id = "aud_" + std::to_string(seq);
  entry.time = 1'700'000'000'000 + seq;
  entry.organization_id = "org_1";
  entry.project_id = "prj_1";
  entry.actor = "ksak_1";
  entry.actor_kind = "admin_key";
  entry.action = std::move(action);
  entry.target = "agt_" + std::to_string(seq);
  entry.source_address = "127.0.0.1";
  entry.request_id = "req_" + std::to_string(seq);
  entry.details = R"({"status":"paused"})";
  return entry;
}

// A correctly linked chain of `count` entries with seq 1..count.
std::vector<store::AuditEntry> makeChain(int count) {
  std::vector<store::AuditEntry> chain;
  std::string prev(kGenesisHash);
  for (int seq = 1; seq <= count; ++seq) {
    store::AuditEntry entry = makeEntry(seq, "agent.status");
    entry.prev_hash = prev;
    entry.hash = entryHash(entry, prev);
    prev = entry.hash;
    chain.push_back(entry);
  }
  return chain;
}

// Gives an entry a new hash after an edit, as someone covering their tracks would.
void rehash(store::AuditEntry& entry) {
  entry.hash = entryHash(entry, entry.prev_hash);
}

TEST(AuditChainTest, HashIsStableSha256Hex) {
  store::AuditEntry entry = makeEntry(1, "token.mint");
  std::string first = entryHash(entry, kGenesisHash);
  EXPECT_EQ(first.size(), 64u);
  EXPECT_EQ(first.find_first_not_of("0123456789abcdef"), std::string::npos);
  EXPECT_EQ(entryHash(entry, kGenesisHash), first);
}

TEST(AuditChainTest, EveryHashedFieldChangesHash) {
  const store::AuditEntry base = makeEntry(1, "token.mint");
  const std::string base_hash = entryHash(base, kGenesisHash);
  std::vector<std::pair<std::string, std::string store::AuditEntry::*>> fields = {
      {"id", &store::AuditEntry::id},
      {"organization_id", &store::AuditEntry::organization_id},
      {"project_id", &store::AuditEntry::project_id},
      {"actor", &store::AuditEntry::actor},
      {"actor_kind", &store::AuditEntry::actor_kind},
      {"action", &store::AuditEntry::action},
      {"target", &store::AuditEntry::target},
      {"source_address", &store::AuditEntry::source_address},
      {"request_id", &store::AuditEntry::request_id},
      {"details", &store::AuditEntry::details},
  };
  for (const auto& [name, field] : fields) {
    store::AuditEntry changed = base;
    changed.*field += "x";
    EXPECT_NE(entryHash(changed, kGenesisHash), base_hash) << name;
  }
  store::AuditEntry later = base;
  later.time += 1;
  EXPECT_NE(entryHash(later, kGenesisHash), base_hash);
  EXPECT_NE(entryHash(base, std::string(64, '1')), base_hash);
}

TEST(AuditChainTest, SeqAndStoredHashNotHashed) {
  store::AuditEntry entry = makeEntry(1, "token.mint");
  std::string hash = entryHash(entry, kGenesisHash);
  entry.seq = 99;
  entry.hash = "ignored";
  EXPECT_EQ(entryHash(entry, kGenesisHash), hash);
}

TEST(AuditChainTest, FieldBoundariesAreUnambiguous) {
  store::AuditEntry left = makeEntry(1, "token.mint");
  store::AuditEntry right = left;
  left.actor = "ab";
  left.actor_kind = "c";
  right.actor = "a";
  right.actor_kind = "bc";
  EXPECT_NE(canonicalSerialization(left, kGenesisHash),
            canonicalSerialization(right, kGenesisHash));
}

TEST(AuditChainTest, EmptyChainIsIntact) {
  ChainReport report = verifyChain({});
  EXPECT_TRUE(report.ok);
  EXPECT_EQ(report.entries, 0);
}

TEST(AuditChainTest, IntactChainVerifies) {
  ChainReport report = verifyChain(makeChain(5));
  EXPECT_TRUE(report.ok);
  EXPECT_EQ(report.entries, 5);
  EXPECT_EQ(report.first_bad_seq, 0);
  EXPECT_EQ(report.problem, "");
}

TEST(AuditChainTest, EditedDetailsReported) {
  std::vector<store::AuditEntry> chain = makeChain(5);
  chain[2].details = R"({"status":"active"})";
  ChainReport report = verifyChain(chain);
  EXPECT_FALSE(report.ok);
  EXPECT_EQ(report.first_bad_seq, 3);
  EXPECT_EQ(report.problem, "edited");
}

TEST(AuditChainTest, RehashedEditReportedAtEditedEntry) {
  std::vector<store::AuditEntry> chain = makeChain(5);
  chain[1].actor = "ksak_someone_else";
  rehash(chain[1]);
  ChainReport report = verifyChain(chain);
  EXPECT_FALSE(report.ok);
  EXPECT_EQ(report.first_bad_seq, 2);
  EXPECT_EQ(report.problem, "edited");
}

TEST(AuditChainTest, RemovedMiddleEntryReported) {
  std::vector<store::AuditEntry> chain = makeChain(5);
  chain.erase(chain.begin() + 2);
  ChainReport report = verifyChain(chain);
  EXPECT_FALSE(report.ok);
  EXPECT_EQ(report.entries, 4);
  EXPECT_EQ(report.first_bad_seq, 4);
  EXPECT_EQ(report.problem, "removed");
}

TEST(AuditChainTest, RemovedFirstEntryReported) {
  std::vector<store::AuditEntry> chain = makeChain(3);
  chain.erase(chain.begin());
  ChainReport report = verifyChain(chain);
  EXPECT_FALSE(report.ok);
  EXPECT_EQ(report.first_bad_seq, 2);
  EXPECT_EQ(report.problem, "removed");
}

TEST(AuditChainTest, SwappedEntriesReportedAsReordered) {
  std::vector<store::AuditEntry> chain = makeChain(5);
  std::swap(chain[1], chain[2]);
  std::swap(chain[1].seq, chain[2].seq);
  ChainReport report = verifyChain(chain);
  EXPECT_FALSE(report.ok);
  EXPECT_EQ(report.first_bad_seq, 2);
  EXPECT_EQ(report.problem, "reordered");
}

TEST(AuditChainTest, VerifierAcceptsPages) {
  std::vector<store::AuditEntry> chain = makeChain(6);
  chain[4].details = "{}";
  ChainVerifier verifier;
  verifier.add(std::span(chain).subspan(0, 2));
  verifier.add(std::span(chain).subspan(2, 2));
  verifier.add(std::span(chain).subspan(4));
  ChainReport report = verifier.finish();
  EXPECT_FALSE(report.ok);
  EXPECT_EQ(report.entries, 6);
  EXPECT_EQ(report.first_bad_seq, 5);
  EXPECT_EQ(report.problem, "edited");
}

}  // namespace
}  // namespace keystore::audit
