#include "proxy/header_arena.h"

#include <openssl/crypto.h>

namespace keystore::proxy {

void* WipingResource::do_allocate(size_t bytes, size_t alignment) {
  return upstream_->allocate(bytes, alignment);
}

void WipingResource::do_deallocate(void* pointer, size_t bytes, size_t alignment) {
  OPENSSL_cleanse(pointer, bytes);
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

void HeaderArena::rewind() {
  // Heap blocks are zeroed as release() returns them. The inline block is zeroed whole,
  // because the resource does not tell how much of it the last request used.
  resource_.release();
  OPENSSL_cleanse(inline_block_.data(), inline_block_.size());
}

}  // namespace keystore::proxy
