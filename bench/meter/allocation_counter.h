// A count of operator new calls, from replacement global allocation functions defined in
// allocation_counter.cc. Calls of malloc itself (as in OpenSSL) are not counted.
// Thread-safe.
#pragma once

#include <cstdint>

// Calls of operator new since the program started.
int64_t allocationCount();
