#include "common/thread_name.h"

#include <pthread.h>

#include <algorithm>
#include <array>
#include <cstring>

namespace keystore {

void nameThisThread(std::string_view name) {
  // 16 bytes including the terminating zero is the kernel's limit (TASK_COMM_LEN).
  std::array<char, 16> terminated{};
  size_t size = std::min(name.size(), terminated.size() - 1);
  std::memcpy(terminated.data(), name.data(), size);
  pthread_setname_np(pthread_self(), terminated.data());
}

}  // namespace keystore
