// Plain-text tables for the CLI's human output.
#pragma once

#include <string>
#include <vector>

namespace keystore::cli {

// Lays out `rows` under `headers` in left-aligned columns separated by two spaces, each as
// wide as its widest cell in UTF-8 code points ("…" counts as one). One line per row, each
// ending in a newline, without trailing spaces.
std::string formatTable(const std::vector<std::string>& headers,
                        const std::vector<std::vector<std::string>>& rows);

}  // namespace keystore::cli
