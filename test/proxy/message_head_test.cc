#include "proxy/message_head.h"

#include <gtest/gtest.h>

#include <boost/asio/buffer.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/http.hpp>

namespace keystore::proxy {
namespace {

namespace http = boost::beast::http;

// The head Beast's own serializer writes for `message`, for comparison.
template <bool isRequest>
std::string beastHead(http::message<isRequest, http::empty_body>& message) {
  http::serializer<isRequest, http::empty_body> serializer(message);
  serializer.split(true);
  std::string head;
  boost::system::error_code error;
  serializer.next(error, [&](boost::system::error_code&, const auto& buffers) {
    head = boost::beast::buffers_to_string(buffers);
    serializer.consume(boost::asio::buffer_size(buffers));
  });
  EXPECT_FALSE(error) << error.message();
  return head;
}

TEST(MessageHeadTest, RequestHeadMatchesBeast) {
  http::request<http::empty_body> request{http::verb::post, "/v1/chat/completions?x=1", 11};
  request.set(http::field::host, "api.openai.com");
  request.set(http::field::authorization, "Bearer sk-test");
  request.insert("x-custom", "a");
  request.insert("X-Custom", "b");
  request.set(http::field::content_length, "42");

  std::string head;
  appendRequestHead(head, request.base());

  EXPECT_EQ(head, beastHead(request));
  EXPECT_EQ(head,
            "POST /v1/chat/completions?x=1 HTTP/1.1\r\nHost: api.openai.com\r\n"
            "Authorization: Bearer sk-test\r\nx-custom: a\r\nX-Custom: b\r\n"
            "Content-Length: 42\r\n\r\n");
}

TEST(MessageHeadTest, UnknownMethodKeepsItsText) {
  http::request<http::empty_body> request;
  request.method_string("PROPFIND");
  request.target("/");
  request.version(10);

  std::string head;
  appendRequestHead(head, request.base());

  EXPECT_EQ(head, "PROPFIND / HTTP/1.0\r\n\r\n");
}

TEST(MessageHeadTest, ResponseHeadMatchesBeast) {
  http::response<http::empty_body> response{http::status::too_many_requests, 11};
  response.set(http::field::content_type, "application/json");
  response.set(http::field::retry_after, "3");

  std::string head;
  appendStatusLineAndFields(head, response.base(), 11);
  endHead(head);

  EXPECT_EQ(head, beastHead(response));
  EXPECT_EQ(head,
            "HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/json\r\n"
            "Retry-After: 3\r\n\r\n");
}

TEST(MessageHeadTest, ResponseReplacesReasonAndTakesClientVersion) {
  http::response<http::empty_body> response{http::status::unauthorized, 11};
  response.reason("Bad key sk-test-OPENAI-0001");

  std::string head;
  appendStatusLineAndFields(head, response.base(), 10);
  appendField(head, "x-request-id", "req_1");
  endHead(head);

  EXPECT_EQ(head, "HTTP/1.0 401 Unauthorized\r\nx-request-id: req_1\r\n\r\n");
}

TEST(MessageHeadTest, EmptyAndLongFieldValues) {
  std::string head = "GET / HTTP/1.1\r\n";
  const std::string long_value(300, 'v');
  appendField(head, "x-empty", "");
  appendField(head, "x-long", long_value);

  EXPECT_EQ(head, "GET / HTTP/1.1\r\nx-empty: \r\nx-long: " + long_value + "\r\n");
}

TEST(MessageHeadTest, UnknownStatusHasEmptyReason) {
  http::response<http::empty_body> response;
  response.result(298);
  response.reason("Odd");

  std::string head;
  appendStatusLineAndFields(head, response.base(), 11);
  endHead(head);

  EXPECT_EQ(head, "HTTP/1.1 298 \r\n\r\n");
}

TEST(MessageHeadTest, ChunkSizeIsLowercaseHex) {
  EXPECT_EQ(ChunkSizeLine(0).text(), "0\r\n");
  EXPECT_EQ(ChunkSizeLine(255).text(), "ff\r\n");
  EXPECT_EQ(ChunkSizeLine(16384).text(), "4000\r\n");
  EXPECT_EQ(ChunkSizeLine(SIZE_MAX).text(), "ffffffffffffffff\r\n");
}

}  // namespace
}  // namespace keystore::proxy
