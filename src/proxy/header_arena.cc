#include "proxy/header_arena.h"


#include <cstdint>

#include "common/secure_zero.h"

namespace keystore::proxy {

void* WipingResource::do_allocate(size_t bytes, size_t alignment) {
  return upstream_->allocate(bytes, alignment);
}

void WipingResource::do_deallocate(void* pointer, size_t bytes, size_t alignment) {
  secureZero(pointer, bytes);
  upstream_->deallocate(pointer, bytes, alignment);
}

bool WipingResource::do_is_equal(const std::pmr::memory_resource& other) const noexcept {
  return this == &other;
}

std::pmr::memory_resource* wipingHeap() {
  static auto* resource = new WipingResource(std::pmr::new_delete_resource());
  return resource;
}

HeaderArena::HeaderArena(std::pmr::memory_resource* upstream)
    : heap_blocks_(upstream),
      resource_(inline_block_.data(), inline_block_.size(), &heap_blocks_) {}

HeaderArena::~HeaderArena() {
  rewind();
}

void* HeaderArena::do_allocate(size_t bytes, size_t alignment) {
  auto* first = static_cast<std::byte*>(resource_.allocate(bytes, alignment));
  std::byte* end = first + bytes;
  // Compared as integers: the block may come from the heap, and relational comparison of
  // pointers into different objects is unspecified.
  auto address = reinterpret_cast<uintptr_t>(first);
  auto inline_first = reinterpret_cast<uintptr_t>(inline_block_.data());
  if (address >= inline_first && address < inline_first + inline_block_.size() &&
      end > inline_used_end_) {
    inline_used_end_ = end;
  }
  return first;
}

void HeaderArena::rewind() {
  // Heap blocks are zeroed as release() returns them.
  resource_.release();
  secureZero(inline_block_.data(), static_cast<size_t>(inline_used_end_ - inline_block_.data()));
  inline_used_end_ = inline_block_.data();
}

}  // namespace keystore::proxy
