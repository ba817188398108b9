// Header field storage of the relay.
//
// Beast's default basic_fields makes one heap allocation per field and one for the start
// line. A proxied request passes through three headers (the client's request, the upstream
// request and the upstream response), which cost about twenty malloc and free calls in all.
// The relay keeps them in a per-connection arena instead: an allocation moves a pointer, a
// free does nothing, and the whole arena is rewound before the connection's next request.
//
// Fields and the message types built on them take the arena's allocator. Fields constructed
// without one use the default memory resource (the heap), so tests and code away from the
// relay can use them like Beast's own http::fields.
#pragma once

#include <array>
#include <boost/beast/http/fields.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/parser.hpp>
#include <cstddef>
#include <memory_resource>
#include <tuple>
#include <utility>

namespace keystore::proxy {

// Allocates from a memory resource, like std::pmr::polymorphic_allocator, but is assignable,
// which Beast requires of a fields allocator. Default-constructed, it uses the default
// resource.
template <typename T>
class ResourceAllocator {
 public:
  using value_type = T;

  ResourceAllocator() noexcept : resource_(std::pmr::get_default_resource()) {}
  explicit ResourceAllocator(std::pmr::memory_resource* resource) noexcept : resource_(resource) {}
  template <typename U>
  ResourceAllocator(const ResourceAllocator<U>& other) noexcept  // NOLINT: implicit rebind
      : resource_(other.resource()) {}

  T* allocate(size_t count) {
    return static_cast<T*>(resource_->allocate(count * sizeof(T), alignof(T)));
  }
  void deallocate(T* pointer, size_t count) noexcept {
    resource_->deallocate(pointer, count * sizeof(T), alignof(T));
  }

  std::pmr::memory_resource* resource() const noexcept { return resource_; }

  template <typename U>
  bool operator==(const ResourceAllocator<U>& other) const noexcept {
    return resource_ == other.resource() || resource_->is_equal(*other.resource());
  }

 private:
  std::pmr::memory_resource* resource_;
};

using FieldAllocator = ResourceAllocator<char>;
using Fields = boost::beast::http::basic_fields<FieldAllocator>;

// Passes allocations to another resource and zeroes each block, with a write the compiler
// cannot drop, before giving it back.
class WipingResource : public std::pmr::memory_resource {
 public:
  explicit WipingResource(std::pmr::memory_resource* upstream) : upstream_(upstream) {}

 private:
  void* do_allocate(size_t bytes, size_t alignment) override;
  void do_deallocate(void* pointer, size_t bytes, size_t alignment) override;
  bool do_is_equal(const std::pmr::memory_resource& other) const noexcept override;

  std::pmr::memory_resource* upstream_;
};

// Returns a process-wide WipingResource over the heap, for buffers that hold raw request bytes. It
// is never destroyed, so buffers freed late in process exit still find it.
std::pmr::memory_resource* wipingHeap();

// A per-connection arena for header fields. It starts in an inline block big enough for the
// headers of a typical request and its response. Larger headers (up to the parser's header
// limit) take blocks from the heap until the next rewind.
//
// Header values carry agent tokens and, in upstream requests, the injected credential, so the
// arena zeroes its memory when it rewinds or is destroyed: no header outlives its request in
// memory that a later allocation could hand out.
//
// NOTE: memory freed during a request is reused only after the next rewind. Each failover to
// another pool credential copies the client's fields into a new upstream header, so a request
// that fails over N times keeps N such copies (each at most the header limit) until it ends.
//
// Not thread-safe, because only the connection's own coroutine uses it.
class HeaderArena final : public std::pmr::memory_resource {
 public:
  // Takes the blocks beyond the inline one from `upstream`.
  explicit HeaderArena(std::pmr::memory_resource* upstream = std::pmr::new_delete_resource());
  ~HeaderArena();
  HeaderArena(const HeaderArena&) = delete;
  HeaderArena& operator=(const HeaderArena&) = delete;

  FieldAllocator allocator() { return FieldAllocator(this); }

  // Releases and zeroes everything allocated since the last rewind. The caller guarantees
  // that no object that allocated from the arena still uses such memory: parsers and messages
  // are destroyed or reset to an empty header first.
  void rewind();

 private:
  void* do_allocate(size_t bytes, size_t alignment) override;
  // Memory comes back only at the next rewind.
  void do_deallocate(void* /*pointer*/, size_t /*bytes*/, size_t /*alignment*/) override {}
  bool do_is_equal(const std::pmr::memory_resource& other) const noexcept override {
    return this == &other;
  }

  static constexpr size_t kInlineBytes = 4096;
  alignas(std::max_align_t) std::array<std::byte, kInlineBytes> inline_block_;
  // The end of the highest allocation in the inline block since the last rewind. Rewinding
  // zeroes the block up to here, which for a typical request is a fraction of it.
  std::byte* inline_used_end_ = inline_block_.data();
  WipingResource heap_blocks_;
  std::pmr::monotonic_buffer_resource resource_;
};

// Constructs a message or parser whose fields allocate from `allocator`, with a
// default-constructed body.
template <typename MessageOrParser>
MessageOrParser withFieldAllocator(const FieldAllocator& allocator) {
  return MessageOrParser(std::piecewise_construct, std::make_tuple(), std::make_tuple(allocator));
}

}  // namespace keystore::proxy
