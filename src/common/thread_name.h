// Names the calling thread, so that top -H, ps -L, perf and /proc/PID/task/*/comm tell the
// proxy's I/O threads, the ledger writer and the webhook threads apart.
#pragma once

#include <string_view>

namespace keystore {

// Sets the calling thread's name. Linux keeps at most 15 bytes, so a longer name is cut. A
// failure is ignored: a name is a diagnostic aid.
void nameThisThread(std::string_view name);

}  // namespace keystore
