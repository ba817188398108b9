// The sizes of the multi-row INSERT statements that SqliteStore::appendLedger writes ledger rows
// with. Declared here so that tests can check them against SQLite's parameter limit.
#pragma once

#include <array>
#include <cstddef>
#include <span>

namespace keystore::store::sqlite {

// Rows per multi-row INSERT, largest first: one statement starts and resets SQLite's program
// once for all its rows. A batch's last rows go in smaller statements, and fewer than the
// smallest one by one.
inline constexpr std::array<std::size_t, 3> kLedgerRowsPerInsert = {128, 32, 8};
// Parameters per row of the statement with every column.
inline constexpr std::size_t kLedgerParametersPerRow = 28;

// The statement sizes of kLedgerRowsPerInsert whose parameters fit in `variable_limit`
// (SQLITE_LIMIT_VARIABLE_NUMBER of the connection), largest first. 128 rows need 3,584
// parameters: SQLite's default limit has been 32,766 since 3.32 and was 999 before, and a build
// may set a lower one.
std::span<const std::size_t> ledgerRowsPerInsert(int variable_limit);

}  // namespace keystore::store::sqlite
