// The sizes and row shapes of the multi-row INSERT statements that SqliteStore::appendLedger
// writes ledger rows with. Declared here so that tests can check them.
#pragma once

#include <array>
#include <cstddef>
#include <span>

#include "store/records.h"

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

// The columns that a row's INSERT binds. kCommon leaves out emails, messages, read_units,
// write_units, prices, cost_micros and billable, which then take their defaults (0 and '').
enum class LedgerRowShape { kFull, kCommon };

// kCommon when every column that the common statement leaves out has its default value in `row`,
// so inserting it without them loses nothing. Most rows of LLM calls without prices qualify.
LedgerRowShape ledgerRowShape(const LedgerRowView& row);

}  // namespace keystore::store::sqlite
