#include "proxy/header_arena.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <boost/asio/buffer.hpp>
#include <boost/beast/http.hpp>
#include <string>

#include "proxy/message_head.h"

namespace keystore::proxy {
namespace {

namespace http = boost::beast::http;

// Counts what the arena takes from the heap beyond its inline block.
class CountingResource : public std::pmr::memory_resource {
 public:
  size_t allocations = 0;
  size_t deallocations = 0;
  size_t outstanding_bytes = 0;
  size_t returned_unwiped = 0;  // blocks given back with a nonzero byte in them

 private:
  void* do_allocate(size_t bytes, size_t alignment) override {
    ++allocations;
    outstanding_bytes += bytes;
    return std::pmr::new_delete_resource()->allocate(bytes, alignment);
  }
  void do_deallocate(void* pointer, size_t bytes, size_t alignment) override {
    ++deallocations;
    const auto* first = static_cast<const unsigned char*>(pointer);
    if (std::any_of(first, first + bytes, [](unsigned char byte) { return byte != 0; })) {
      ++returned_unwiped;
    }
    outstanding_bytes -= bytes;
    std::pmr::new_delete_resource()->deallocate(pointer, bytes, alignment);
  }
  bool do_is_equal(const std::pmr::memory_resource& other) const noexcept override {
    return this == &other;
  }
};

using RequestParser = http::request_parser<http::string_body, FieldAllocator>;
using ResponseParser = http::response_parser<http::string_body, FieldAllocator>;

template <typename Parser>
void parseAll(Parser& parser, std::string_view wire) {
  boost::system::error_code error;
  parser.eager(true);
  size_t used = parser.put(boost::asio::buffer(wire.data(), wire.size()), error);
  ASSERT_FALSE(error) << error.message();
  ASSERT_EQ(used, wire.size());
  ASSERT_TRUE(parser.is_done());
}

constexpr std::string_view kChatRequest =
    "POST /v1/openai/v1/chat/completions HTTP/1.1\r\n"
    "Host: 127.0.0.1:8080\r\n"
    "Authorization: Bearer ks_0000000000000000000000000000000000000000000000000000000000000000\r\n"
    "Content-Type: application/json\r\n"
    "User-Agent: OpenAI/JS 4.104.0\r\n"
    "Accept: application/json\r\n"
    "X-Stainless-Lang: js\r\n"
    "X-Stainless-Package-Version: 4.104.0\r\n"
    "Content-Length: 2\r\n\r\n{}";

constexpr std::string_view kChatResponse =
    "HTTP/1.1 200 OK\r\n"
    "Date: Sat, 05 Dec 2026 08:00:00 GMT\r\n"
    "Content-Type: application/json\r\n"
    "Content-Length: 2\r\n"
    "Connection: keep-alive\r\n"
    "openai-processing-ms: 312\r\n"
    "x-request-id: req_0123456789abcdef0123456789abcdef\r\n"
    "x-ratelimit-remaining-requests: 9999\r\n"
    "x-ratelimit-remaining-tokens: 1999000\r\n\r\n{}";

TEST(HeaderArenaTest, TypicalExchangeFitsTheInlineBlock) {
  CountingResource heap;
  HeaderArena arena(&heap);
  for (int request = 0; request < 3; ++request) {
    arena.rewind();
    RequestParser client(std::piecewise_construct, std::make_tuple(),
                         std::make_tuple(arena.allocator()));
    parseAll(client, kChatRequest);
    auto upstream = withFieldAllocator<http::request<http::string_body, Fields>>(arena.allocator());
    upstream.method(client.get().method());
    upstream.target("/v1/chat/completions");
    for (const auto& field : client.get()) {
      if (field.name() != http::field::authorization) {
        upstream.insert(field.name_string(), field.value());
      }
    }
    upstream.set(http::field::authorization, "Bearer sk-test-key");
    ResponseParser response(std::piecewise_construct, std::make_tuple(),
                            std::make_tuple(arena.allocator()));
    parseAll(response, kChatResponse);
    EXPECT_EQ(response.get()["openai-processing-ms"], "312");
    EXPECT_EQ(upstream[http::field::user_agent], "OpenAI/JS 4.104.0");
  }
  EXPECT_EQ(heap.allocations, 0u);
}

TEST(HeaderArenaTest, LargeHeadersUseHeapUntilRewind) {
  CountingResource heap;
  HeaderArena arena(&heap);
  std::string wire = "GET / HTTP/1.1\r\nHost: example.test\r\n";
  for (int i = 0; i < 64; ++i) {
    wire += "x-field-" + std::to_string(i) + ": " + std::string(200, 'v') + "\r\n";
  }
  wire += "\r\n";
  {
    RequestParser parser(std::piecewise_construct, std::make_tuple(),
                         std::make_tuple(arena.allocator()));
    parser.header_limit(64 * 1024);
    parseAll(parser, wire);
    EXPECT_EQ(parser.get()["x-field-63"], std::string(200, 'v'));
  }
  EXPECT_GT(heap.allocations, 0u);
  EXPECT_GT(heap.outstanding_bytes, 64u * 200u);
  arena.rewind();
  EXPECT_EQ(heap.deallocations, heap.allocations);
  EXPECT_EQ(heap.outstanding_bytes, 0u);
  EXPECT_EQ(heap.returned_unwiped, 0u);
}

TEST(HeaderArenaTest, RewindZeroesTheInlineBlock) {
  HeaderArena arena;
  FieldAllocator allocator = arena.allocator();
  constexpr std::string_view kToken =
      "Bearer ks_0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
  char* first = allocator.allocate(kToken.size());
  std::copy(kToken.begin(), kToken.end(), first);
  arena.rewind();

  // The arena starts over at the same address, so this reads what the last request left.
  char* second = allocator.allocate(kToken.size());
  ASSERT_EQ(second, first);
  EXPECT_TRUE(std::all_of(second, second + kToken.size(), [](char byte) { return byte == 0; }));
}

TEST(HeaderArenaTest, RewindZeroesUsedInlineBytes) {
  HeaderArena arena;
  FieldAllocator allocator = arena.allocator();
  // Uneven sizes leave alignment gaps, as the fields of a real header do.
  char* first = allocator.allocate(1);
  size_t used = 0;
  for (size_t size : {1u, 7u, 100u, 333u, 1000u, 2000u}) {
    char* block = allocator.allocate(size);
    std::fill_n(block, size, '\xAA');
    used = static_cast<size_t>(block + size - first);
  }
  ASSERT_LE(used, 4096u);
  arena.rewind();

  // A smaller request next, then a rewind: the bytes of both must read as zero.
  char* again = allocator.allocate(16);
  ASSERT_EQ(again, first);
  std::fill_n(again, 16, '\xBB');
  arena.rewind();
  char* whole = allocator.allocate(used);
  ASSERT_EQ(whole, first);
  EXPECT_TRUE(std::all_of(whole, whole + used, [](char byte) { return byte == 0; }));
}

TEST(HeaderArenaTest, FieldsWithoutAnArenaUseTheHeap) {
  Fields fields;
  fields.set(http::field::content_type, "application/json");
  EXPECT_EQ(fields.get_allocator().resource(), std::pmr::get_default_resource());
  std::string head;
  appendFields(head, fields);
  EXPECT_EQ(head, "Content-Type: application/json\r\n");
}

TEST(HeaderArenaTest, AllocatorsCompareByResource) {
  HeaderArena first;
  HeaderArena second;
  EXPECT_TRUE(first.allocator() == first.allocator());
  EXPECT_FALSE(first.allocator() == second.allocator());
  EXPECT_TRUE(ResourceAllocator<int>(first.allocator()) == first.allocator());
}

}  // namespace
}  // namespace keystore::proxy
