#include "metering/usage.h"

#include <gtest/gtest.h>
#include <malloc.h>

#include <algorithm>
#include <cstdint>
#include <functional>
#include <optional>
#include <ostream>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "metering/usage_json.h"
#include "metering/usage_sse.h"
#include "metering/usage_stream_options.h"

namespace keystore::metering {

void PrintTo(const Usage& usage, std::ostream* out) {
  *out << "{input_tokens=" << usage.input_tokens
       << " cached_input_tokens=" << usage.cached_input_tokens
       << " output_tokens=" << usage.output_tokens << " requests=" << usage.requests
       << " emails=" << usage.emails << " messages=" << usage.messages
       << " read_units=" << usage.read_units << " write_units=" << usage.write_units << " model=\""
       << usage.model << "\" reported=" << (usage.reported ? "true" : "false") << "}";
}

namespace {

// ---------------------------------------------------------------------------------------------
// Helpers

using Chunks = std::vector<std::string_view>;

// One request and its upstream response.
struct Exchange {
  std::string kind = "";
  std::string method = "POST";
  std::string path = "/";
  std::string request_body = "";
  int status = 200;
  std::string content_type = "application/json";
  std::string body = "";
};

Usage extract(const Exchange& exchange, const Chunks& chunks) {
  UsageRequest request{exchange.method, exchange.path, exchange.request_body};
  Result<std::unique_ptr<UsageExtractor>> extractor = makeUsageExtractor(exchange.kind, request);
  EXPECT_TRUE(extractor.has_value()) << exchange.kind;
  if (!extractor) {
    return Usage();
  }
  (*extractor)->onResponse(exchange.status, exchange.content_type);
  for (std::string_view chunk : chunks) {
    (*extractor)->onBody(chunk);
  }
  return (*extractor)->finish();
}

Usage extract(const Exchange& exchange) {
  return extract(exchange, {exchange.body});
}

Chunks splitAt(std::string_view text, std::size_t at) {
  return {text.substr(0, at), text.substr(at)};
}

// Splits `text` into chunks of 0 to `max_size` bytes (empty chunks included on purpose).
Chunks randomChunks(std::string_view text, uint32_t seed, std::size_t max_size) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<std::size_t> size(0, max_size);
  Chunks chunks;
  while (!text.empty()) {
    std::size_t n = std::min(size(rng), text.size());
    chunks.push_back(text.substr(0, n));
    text.remove_prefix(n);
  }
  return chunks;
}

Chunks byteChunks(std::string_view text) {
  Chunks chunks;
  for (std::size_t i = 0; i < text.size(); ++i) {
    chunks.push_back(text.substr(i, 1));
  }
  return chunks;
}

// Checks that `exchange` yields `expected` whole, split in two at every offset, one byte at a
// time and in random chunkings. Stops at the first mismatch to keep the output readable.
void expectUsageForEveryChunking(const Exchange& exchange, const Usage& expected) {
  Usage whole = extract(exchange);
  ASSERT_EQ(whole, expected) << "whole body";

  for (std::size_t at = 0; at <= exchange.body.size(); ++at) {
    Usage split = extract(exchange, splitAt(exchange.body, at));
    ASSERT_EQ(split, expected) << "split at byte " << at << " of " << exchange.body.size()
                               << ", after \""
                               << exchange.body.substr(at > 20 ? at - 20 : 0,
                                                       std::min<std::size_t>(at, 20))
                               << "\"";
  }

  ASSERT_EQ(extract(exchange, byteChunks(exchange.body)), expected) << "one byte at a time";

  for (uint32_t seed = 1; seed <= 200; ++seed) {
    ASSERT_EQ(extract(exchange, randomChunks(exchange.body, seed, 24)), expected)
        << "random chunking, seed " << seed;
  }
}

std::string sseEvent(std::string_view data, std::string_view type = {}) {
  std::string event;
  if (!type.empty()) {
    event += "event: ";
    event += type;
    event += "\n";
  }
  event += "data: ";
  event += data;
  event += "\n\n";
  return event;
}

std::string replaceAll(std::string text, std::string_view from, std::string_view to) {
  std::size_t at = 0;
  while ((at = text.find(from, at)) != std::string::npos) {
    text.replace(at, from.size(), to);
    at += to.size();
  }
  return text;
}

std::string withCrLf(const std::string& stream) {
  return replaceAll(stream, "\n", "\r\n");
}
std::string withCr(const std::string& stream) {
  return replaceAll(stream, "\n", "\r");
}

Usage tokens(int64_t input, int64_t cached, int64_t output, std::string model) {
  Usage usage;
  usage.input_tokens = input;
  usage.cached_input_tokens = cached;
  usage.output_tokens = output;
  usage.requests = 1;
  usage.model = std::move(model);
  usage.reported = true;
  return usage;
}

Usage notReported(std::string model = {}) {
  Usage usage;
  usage.requests = 1;
  usage.model = std::move(model);
  return usage;
}

// Bytes the allocator has handed out and not taken back (glibc).
std::size_t heapInUse() {
  struct mallinfo2 info = mallinfo2();
  return info.uordblks + info.hblkhd;
}

// ---------------------------------------------------------------------------------------------
// Fixtures, written in the providers' wire formats.

constexpr std::string_view kChatRequest =
    R"({"model":"gpt-4o-mini","messages":[{"role":"user","content":"Say hello"}]})";
constexpr std::string_view kStreamedChatRequest =
    R"({"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"Say hello"}]})";

constexpr std::string_view kChatCompletionJson = R"({
  "id": "chatcmpl-Bx41Tq9mKp2LwZr7",
  "object": "chat.completion",
  "created": 1767225600,
  "model": "gpt-4o-mini-2024-07-18",
  "choices": [
    {
      "index": 0,
      "message": {
        "role": "assistant",
        "content": "Hello! The \"usage\" block below counts 1117 prompt tokens.",
        "refusal": null,
        "annotations": []
      },
      "logprobs": null,
      "finish_reason": "stop"
    }
  ],
  "usage": {
    "prompt_tokens": 1117,
    "completion_tokens": 46,
    "total_tokens": 1163,
    "prompt_tokens_details": {"cached_tokens": 1024, "audio_tokens": 0},
    "completion_tokens_details": {
      "reasoning_tokens": 0,
      "audio_tokens": 0,
      "accepted_prediction_tokens": 0,
      "rejected_prediction_tokens": 0
    }
  },
  "service_tier": "default",
  "system_fingerprint": "fp_0392822090"
}
)";

std::string chatChunk(std::string_view choices, std::string_view usage) {
  return std::string(
             R"({"id":"chatcmpl-C3mXk8","object":"chat.completion.chunk","created":1767225600,)"
             R"("model":"gpt-4o-mini-2024-07-18","service_tier":"default",)"
             R"("system_fingerprint":"fp_560af6e559","choices":)") +
         std::string(choices) + R"(,"usage":)" + std::string(usage) + "}";
}

constexpr std::string_view kStreamUsage =
    R"({"prompt_tokens":12,"completion_tokens":34,"total_tokens":46,)"
    R"("prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},)"
    R"("completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,)"
    R"("accepted_prediction_tokens":0,"rejected_prediction_tokens":0}})";

// The events of a streamed chat completion requested with include_usage, as OpenAI sends
// them: every chunk has "usage":null, then one chunk with empty choices carries the usage.
struct ChatStream {
  std::vector<std::string> events;
  std::size_t usage_event = 0;

  std::string all() const {
    std::string text;
    for (const std::string& event : events) {
      text += event;
    }
    return text;
  }
  std::string withoutUsageEvent() const {
    std::string text;
    for (std::size_t i = 0; i < events.size(); ++i) {
      if (i != usage_event) {
        text += events[i];
      }
    }
    return text;
  }
};

ChatStream chatStreamWithUsage() {
  ChatStream stream;
  stream.events.push_back(sseEvent(chatChunk(
      R"([{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}])",
      "null")));
  for (std::string_view part : {"Hello", " from", " the", " upstream", "."}) {
    stream.events.push_back(
        sseEvent(chatChunk(std::string(R"([{"index":0,"delta":{"content":")") + std::string(part) +
                               R"("},"logprobs":null,"finish_reason":null}])",
                           "null")));
  }
  stream.events.push_back(sseEvent(
      chatChunk(R"([{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}])", "null")));
  stream.usage_event = stream.events.size();
  stream.events.push_back(sseEvent(chatChunk("[]", kStreamUsage)));
  stream.events.push_back(sseEvent("[DONE]"));
  return stream;
}

// The same stream when the request did not ask for usage: no usage member at all.
std::string chatStreamWithoutUsage() {
  std::string stream;
  for (std::string_view part : {"Hello", " there"}) {
    std::string chunk =
        chatChunk(std::string(R"([{"index":0,"delta":{"content":")") + std::string(part) +
                      R"("},"logprobs":null,"finish_reason":null}])",
                  "null");
    stream += sseEvent(replaceAll(chunk, R"(,"usage":null)", ""));
  }
  stream += sseEvent("[DONE]");
  return stream;
}

constexpr std::string_view kResponsesJson = R"({
  "id": "resp_68af2c1e9d0c8190",
  "object": "response",
  "created_at": 1767225600,
  "status": "completed",
  "error": null,
  "incomplete_details": null,
  "model": "gpt-4.1-2025-04-14",
  "output": [
    {
      "type": "message",
      "id": "msg_68af2c1f4b6c8190",
      "status": "completed",
      "role": "assistant",
      "content": [{"type": "output_text", "text": "Two short lines.", "annotations": []}]
    }
  ],
  "parallel_tool_calls": true,
  "reasoning": {"effort": null, "summary": null},
  "temperature": 1.0,
  "text": {"format": {"type": "text"}},
  "tool_choice": "auto",
  "tools": [],
  "top_p": 1.0,
  "usage": {
    "input_tokens": 36,
    "input_tokens_details": {"cached_tokens": 16},
    "output_tokens": 87,
    "output_tokens_details": {"reasoning_tokens": 0},
    "total_tokens": 123
  },
  "metadata": {}
})";

std::string responsesStream() {
  std::string stream;
  stream += sseEvent(
      R"({"type":"response.created","sequence_number":0,"response":{"id":"resp_68af","object":"response","created_at":1767225600,"status":"in_progress","model":"gpt-4.1-mini-2025-04-14","output":[],"usage":null}})",
      "response.created");
  stream += sseEvent(
      R"({"type":"response.in_progress","sequence_number":1,"response":{"id":"resp_68af","object":"response","created_at":1767225600,"status":"in_progress","model":"gpt-4.1-mini-2025-04-14","output":[],"usage":null}})",
      "response.in_progress");
  stream += sseEvent(
      R"({"type":"response.output_text.delta","sequence_number":4,"item_id":"msg_68af","output_index":0,"content_index":0,"delta":"Hi there"})",
      "response.output_text.delta");
  stream += sseEvent(
      R"({"type":"response.completed","sequence_number":9,"response":{"id":"resp_68af","object":"response","created_at":1767225600,"status":"completed","model":"gpt-4.1-mini-2025-04-14","output":[{"id":"msg_68af","type":"message","status":"completed","role":"assistant","content":[{"type":"output_text","text":"Hi there","annotations":[]}]}],"usage":{"input_tokens":2048,"input_tokens_details":{"cached_tokens":1536},"output_tokens":300,"output_tokens_details":{"reasoning_tokens":128},"total_tokens":2348}}})",
      "response.completed");
  return stream;
}

constexpr std::string_view kEmbeddingsJson =
    R"({"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.0023064255,-0.009327292,0.015797347,-0.0077780345,1e-7,-2.5E-3]}],"model":"text-embedding-3-small","usage":{"prompt_tokens":8,"total_tokens":8}})";

constexpr std::string_view kGroqUsage =
    R"({"queue_time":0.045,"prompt_tokens":48,"prompt_time":0.0031,"completion_tokens":120,"completion_time":0.218,"total_tokens":168,"total_time":0.2211})";

std::string groqChunk(std::string_view choices, std::string_view x_groq) {
  return std::string(
             R"({"id":"chatcmpl-5f1d","object":"chat.completion.chunk","created":1767225600,)"
             R"("model":"llama-3.3-70b-versatile","system_fingerprint":"fp_3f3b593e33","choices":)") +
         std::string(choices) + R"(,"x_groq":)" + std::string(x_groq) + "}";
}

std::string groqStream() {
  std::string stream;
  stream += sseEvent(groqChunk(
      R"([{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}])",
      R"({"id":"req_01k2"})"));
  stream += sseEvent(
      groqChunk(R"([{"index":0,"delta":{"content":"Hi"},"logprobs":null,"finish_reason":null}])",
                R"({"id":"req_01k2"})"));
  stream += sseEvent(
      groqChunk(R"([{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}])",
                std::string(R"({"id":"req_01k2","usage":)") + std::string(kGroqUsage) + "}"));
  return stream;
}

constexpr std::string_view kAnthropicRequest =
    R"({"model":"claude-sonnet-4-5","max_tokens":1024,"messages":[{"role":"user","content":"Hello"}]})";

constexpr std::string_view kAnthropicJson = R"({
  "id": "msg_01Hq7xK2mPvR9sTzWbYc3D4e",
  "type": "message",
  "role": "assistant",
  "model": "claude-sonnet-4-5-20250929",
  "content": [{"type": "text", "text": "Hello! How can I help?"}],
  "stop_reason": "end_turn",
  "stop_sequence": null,
  "usage": {
    "input_tokens": 2095,
    "cache_creation_input_tokens": 2051,
    "cache_read_input_tokens": 0,
    "cache_creation": {"ephemeral_5m_input_tokens": 2051, "ephemeral_1h_input_tokens": 0},
    "output_tokens": 503,
    "service_tier": "standard"
  }
})";

std::string anthropicStream() {
  std::string stream;
  stream += sseEvent(
      R"({"type":"message_start","message":{"id":"msg_01Hq7x","type":"message","role":"assistant","model":"claude-sonnet-4-5-20250929","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":472,"cache_creation_input_tokens":0,"cache_read_input_tokens":1800,"output_tokens":2}}})",
      "message_start");
  stream += sseEvent(
      R"({"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}})",
      "content_block_start");
  stream += sseEvent(R"({"type": "ping"})", "ping");
  stream += sseEvent(
      R"({"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hello"}})",
      "content_block_delta");
  stream += sseEvent(R"({"type":"content_block_stop","index":0})", "content_block_stop");
  stream += sseEvent(
      R"({"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":15}})",
      "message_delta");
  // A second delta (server tools) repeats the cumulative totals.
  stream += sseEvent(
      R"({"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"input_tokens":472,"cache_creation_input_tokens":0,"cache_read_input_tokens":1800,"output_tokens":89}})",
      "message_delta");
  stream += sseEvent(R"({"type":"message_stop"})", "message_stop");
  return stream;
}

constexpr std::string_view kResendBatchRequest =
    R"([{"from":"Acme <onboarding@acme.test>","to":["ana@example.test"],"subject":"hello world","html":"<h1>it works!</h1>"},)"
    R"({"from":"Acme <onboarding@acme.test>","to":["bo@example.test"],"subject":"world hello","html":"<p>it works!</p>"},)"
    R"({"from":"Acme <onboarding@acme.test>","to":["cy@example.test"],"subject":"third","text":"plain"}])";

constexpr std::string_view kTwilioPath =
    "/2010-04-01/Accounts/AC0123456789abcdef0123456789abcdef/Messages.json";

constexpr std::string_view kTwilioMessageJson =
    R"({"account_sid":"AC0123456789abcdef0123456789abcdef","api_version":"2010-04-01","body":"Your code is 314159","date_created":"Thu, 01 Jan 2026 00:00:00 +0000","date_sent":null,"direction":"outbound-api","error_code":null,"error_message":null,"from":"+15005550006","num_media":"0","num_segments":"1","price":null,"price_unit":"USD","sid":"SM0123456789abcdef0123456789abcdef","status":"queued","to":"+15005550010","uri":"/2010-04-01/Accounts/AC0123456789abcdef0123456789abcdef/Messages/SM0123456789abcdef0123456789abcdef.json"})";

constexpr std::string_view kPineconeQueryJson =
    R"({"results":[],"matches":[{"id":"doc-17","score":0.8235,"values":[]},{"id":"doc-4","score":0.7911,"values":[]}],"namespace":"articles","usage":{"readUnits":6}})";

// ---------------------------------------------------------------------------------------------
// Kinds

TEST(MakeUsageExtractor, KnownKindsAccepted) {
  for (std::string_view kind :
       {"openai", "anthropic", "emails", "messages", "pinecone", "requests"}) {
    EXPECT_TRUE(isMeteringKind(kind)) << kind;
    EXPECT_TRUE(makeUsageExtractor(kind, UsageRequest{"POST", "/", ""}).has_value()) << kind;
  }
}

TEST(MakeUsageExtractor, UnknownKindRejected) {
  EXPECT_FALSE(isMeteringKind("resend"));
  EXPECT_FALSE(isMeteringKind("OpenAI"));
  EXPECT_FALSE(isMeteringKind(""));
  Result<std::unique_ptr<UsageExtractor>> extractor =
      makeUsageExtractor("tokens", UsageRequest{"POST", "/", ""});
  ASSERT_FALSE(extractor.has_value());
  EXPECT_EQ(extractor.error().code, ErrorCode::kInternal);
  EXPECT_NE(extractor.error().message.find("\"tokens\""), std::string::npos);
}

// ---------------------------------------------------------------------------------------------
// openai

TEST(OpenAiUsage, ChatCompletionSubtractsCachedTokens) {
  Exchange exchange{.kind = "openai",
                    .path = "/v1/chat/completions",
                    .request_body = std::string(kChatRequest),
                    .body = std::string(kChatCompletionJson)};
  expectUsageForEveryChunking(exchange, tokens(93, 1024, 46, "gpt-4o-mini-2024-07-18"));
}

TEST(OpenAiUsage, StreamedChatReadsFinalUsageChunk) {
  Exchange exchange{.kind = "openai",
                    .path = "/v1/chat/completions",
                    .request_body = std::string(kStreamedChatRequest),
                    .content_type = "text/event-stream; charset=utf-8",
                    .body = chatStreamWithUsage().all()};
  expectUsageForEveryChunking(exchange, tokens(12, 0, 34, "gpt-4o-mini-2024-07-18"));
}

TEST(OpenAiUsage, StreamedChatWithCrLfLines) {
  Exchange exchange{.kind = "openai",
                    .path = "/v1/chat/completions",
                    .request_body = std::string(kStreamedChatRequest),
                    .content_type = "text/event-stream",
                    .body = withCrLf(chatStreamWithUsage().all())};
  expectUsageForEveryChunking(exchange, tokens(12, 0, 34, "gpt-4o-mini-2024-07-18"));
}

TEST(OpenAiUsage, StreamedChatWithCrLines) {
  Exchange exchange{.kind = "openai",
                    .path = "/v1/chat/completions",
                    .request_body = std::string(kStreamedChatRequest),
                    .content_type = "text/event-stream",
                    .body = withCr(chatStreamWithUsage().all())};
  expectUsageForEveryChunking(exchange, tokens(12, 0, 34, "gpt-4o-mini-2024-07-18"));
}

TEST(OpenAiUsage, StreamWithoutUsageNotReported) {
  Exchange exchange{.kind = "openai",
                    .path = "/v1/chat/completions",
                    .request_body = std::string(kStreamedChatRequest),
                    .content_type = "text/event-stream",
                    .body = chatStreamWithoutUsage()};
  expectUsageForEveryChunking(exchange, notReported("gpt-4o-mini-2024-07-18"));
}

TEST(OpenAiUsage, StreamCutBeforeUsageNotReported) {
  ChatStream stream = chatStreamWithUsage();
  std::string cut;
  for (std::size_t i = 0; i < stream.usage_event; ++i) {
    cut += stream.events[i];
  }
  cut += stream.events[stream.usage_event].substr(0, 120);
  Exchange exchange{.kind = "openai",
                    .request_body = std::string(kStreamedChatRequest),
                    .content_type = "text/event-stream",
                    .body = cut};
  EXPECT_EQ(extract(exchange), notReported("gpt-4o-mini-2024-07-18"));
}

TEST(OpenAiUsage, StreamCutAfterUsageObjectStillReported) {
  // The usage object closed before the connection dropped; the figure was sent.
  ChatStream stream = chatStreamWithUsage();
  std::string cut;
  for (std::size_t i = 0; i < stream.usage_event; ++i) {
    cut += stream.events[i];
  }
  const std::string& usage_event = stream.events[stream.usage_event];
  cut += usage_event.substr(0, usage_event.size() - 3);  // drops "}\n\n"
  Exchange exchange{.kind = "openai",
                    .request_body = std::string(kStreamedChatRequest),
                    .content_type = "text/event-stream",
                    .body = cut};
  EXPECT_EQ(extract(exchange), tokens(12, 0, 34, "gpt-4o-mini-2024-07-18"));
}

TEST(OpenAiUsage, ResponsesApiJson) {
  Exchange exchange{.kind = "openai",
                    .path = "/v1/responses",
                    .request_body = R"({"model":"gpt-4.1","input":"Write two short lines."})",
                    .body = std::string(kResponsesJson)};
  expectUsageForEveryChunking(exchange, tokens(20, 16, 87, "gpt-4.1-2025-04-14"));
}

TEST(OpenAiUsage, ResponsesApiStreamReadsCompletedEvent) {
  Exchange exchange{.kind = "openai",
                    .path = "/v1/responses",
                    .request_body = R"({"model":"gpt-4.1-mini","input":"Hi","stream":true})",
                    .content_type = "text/event-stream",
                    .body = responsesStream()};
  expectUsageForEveryChunking(exchange, tokens(512, 1536, 300, "gpt-4.1-mini-2025-04-14"));
}

TEST(OpenAiUsage, ResponsesApiIncompleteEventCounts) {
  std::string stream = replaceAll(responsesStream(), "response.completed", "response.incomplete");
  Exchange exchange{.kind = "openai", .content_type = "text/event-stream", .body = stream};
  EXPECT_EQ(extract(exchange), tokens(512, 1536, 300, "gpt-4.1-mini-2025-04-14"));
}

TEST(OpenAiUsage, EmbeddingsCountPromptTokens) {
  Exchange exchange{
      .kind = "openai",
      .path = "/v1/embeddings",
      .request_body = R"({"model":"text-embedding-3-small","input":"The food was delicious"})",
      .body = std::string(kEmbeddingsJson)};
  expectUsageForEveryChunking(exchange, tokens(8, 0, 0, "text-embedding-3-small"));
}

TEST(OpenAiUsage, GroqStreamReadsXGroqUsage) {
  Exchange exchange{
      .kind = "openai",
      .path = "/openai/v1/chat/completions",
      .request_body = R"({"model":"llama-3.3-70b-versatile","stream":true,"messages":[]})",
      .content_type = "text/event-stream",
      .body = groqStream()};
  expectUsageForEveryChunking(exchange, tokens(48, 0, 120, "llama-3.3-70b-versatile"));
}

TEST(OpenAiUsage, GroqUsageAndUsageChunkCountedOnce) {
  // With include_usage, Groq reports the totals in x_groq.usage and again in a usage chunk.
  std::string stream = groqStream();
  stream += sseEvent(replaceAll(groqChunk("[]", R"({"id":"req_01k2"})"), R"("choices":[])",
                                std::string(R"("choices":[],"usage":)") + std::string(kGroqUsage)));
  stream += sseEvent("[DONE]");
  Exchange exchange{.kind = "openai", .content_type = "text/event-stream", .body = stream};
  expectUsageForEveryChunking(exchange, tokens(48, 0, 120, "llama-3.3-70b-versatile"));
}

TEST(OpenAiUsage, RootUsageBeatsXGroqUsage) {
  std::string x_groq_first =
      R"({"model":"llama-3.1-8b-instant","choices":[],"x_groq":{"id":"req_9","usage":{"prompt_tokens":1,"completion_tokens":2}},"usage":{"prompt_tokens":48,"completion_tokens":120}})";
  std::string usage_first =
      R"({"model":"llama-3.1-8b-instant","choices":[],"usage":{"prompt_tokens":48,"completion_tokens":120},"x_groq":{"id":"req_9","usage":{"prompt_tokens":1,"completion_tokens":2}}})";
  for (const std::string& data : {x_groq_first, usage_first}) {
    Exchange exchange{
        .kind = "openai", .content_type = "text/event-stream", .body = sseEvent(data)};
    EXPECT_EQ(extract(exchange), tokens(48, 0, 120, "llama-3.1-8b-instant")) << data;
  }
}

TEST(OpenAiUsage, GroqJsonUsesRootUsage) {
  Exchange exchange{
      .kind = "openai",
      .body =
          std::string(
              R"({"id":"chatcmpl-5f1d","object":"chat.completion","created":1767225600,"model":"llama-3.3-70b-versatile","choices":[{"index":0,"message":{"role":"assistant","content":"Hi"},"logprobs":null,"finish_reason":"stop"}],"usage":)") +
          std::string(kGroqUsage) +
          R"(,"system_fingerprint":"fp_3f3b593e33","x_groq":{"id":"req_01k2"}})"};
  expectUsageForEveryChunking(exchange, tokens(48, 0, 120, "llama-3.3-70b-versatile"));
}

TEST(OpenAiUsage, ModelFallsBackToRequestBody) {
  Exchange exchange{.kind = "openai",
                    .request_body = std::string(kChatRequest),
                    .body = R"({"usage":{"prompt_tokens":5,"completion_tokens":7}})"};
  EXPECT_EQ(extract(exchange), tokens(5, 0, 7, "gpt-4o-mini"));
}

TEST(OpenAiUsage, OverlongModelNameIgnored) {
  std::string model(kMaxJsonStringBytes + 1, 'm');
  Exchange exchange{
      .kind = "openai",
      .request_body = std::string(kChatRequest),
      .body = R"({"model":")" + model + R"(","usage":{"prompt_tokens":5,"completion_tokens":7}})"};
  EXPECT_EQ(extract(exchange), tokens(5, 0, 7, "gpt-4o-mini"));
}

TEST(OpenAiUsage, CachedAbovePromptClamped) {
  Exchange exchange{
      .kind = "openai",
      .body =
          R"({"model":"m","usage":{"prompt_tokens":10,"completion_tokens":1,"prompt_tokens_details":{"cached_tokens":50}}})"};
  EXPECT_EQ(extract(exchange), tokens(0, 10, 1, "m"));
}

TEST(OpenAiUsage, NegativeAndNonIntegerCountsIgnored) {
  Exchange exchange{
      .kind = "openai",
      .body =
          R"({"model":"m","usage":{"prompt_tokens":-5,"completion_tokens":"7","total_tokens":2.5}})"};
  EXPECT_EQ(extract(exchange), notReported("m"));
}

TEST(OpenAiUsage, IntegralDoubleCountsAccepted) {
  Exchange exchange{
      .kind = "openai",
      .body = R"({"model":"m","usage":{"prompt_tokens":5.0,"completion_tokens":7e1}})"};
  EXPECT_EQ(extract(exchange), tokens(5, 0, 70, "m"));
}

TEST(OpenAiUsage, UsageNullNotReported) {
  Exchange exchange{.kind = "openai", .body = R"({"model":"m","usage":null})"};
  EXPECT_EQ(extract(exchange), notReported("m"));
}

TEST(OpenAiUsage, MissingUsageNotReported) {
  std::string body = replaceAll(std::string(kChatCompletionJson), "\"usage\"", "\"usage_gone\"");
  Exchange exchange{.kind = "openai", .request_body = std::string(kChatRequest), .body = body};
  EXPECT_EQ(extract(exchange), notReported("gpt-4o-mini-2024-07-18"));
}

TEST(OpenAiUsage, NestedUsageKeyIgnored) {
  // "usage" inside a message is content, not the response's usage.
  Exchange exchange{
      .kind = "openai",
      .body =
          R"({"model":"m","choices":[{"message":{"usage":{"prompt_tokens":99,"completion_tokens":99}}}]})"};
  EXPECT_EQ(extract(exchange), notReported("m"));
}

TEST(OpenAiUsage, MalformedJsonNotReported) {
  for (std::string_view body :
       {std::string_view(R"({"usage":{"prompt_tokens":12,"completion_tokens")"),
        std::string_view(R"({"usage":{"prompt_tokens":12,"completion_tokens":34)"),
        std::string_view("not json at all"), std::string_view("<html><body>502</body></html>"),
        std::string_view(R"({"usage":{"prompt_tokens":12 "completion_tokens":34}})"),
        std::string_view(""), std::string_view("\xff\xfe{")}) {
    Exchange exchange{
        .kind = "openai", .request_body = std::string(kChatRequest), .body = std::string(body)};
    EXPECT_EQ(extract(exchange), notReported("gpt-4o-mini")) << body;
  }
}

TEST(OpenAiUsage, UsageBeforeSyntaxErrorStillReported) {
  // The usage object closed before the body broke; the figure was sent.
  Exchange exchange{
      .kind = "openai",
      .body = R"({"model":"m","usage":{"prompt_tokens":12,"completion_tokens":34},!)"};
  EXPECT_EQ(extract(exchange), tokens(12, 0, 34, "m"));
}

TEST(OpenAiUsage, MalformedEventSkippedLaterEventRead) {
  std::string stream =
      sseEvent(R"({"choices":[{"delta":)") +
      sseEvent(R"({"model":"m","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":4}})") +
      sseEvent("[DONE]");
  Exchange exchange{.kind = "openai", .content_type = "text/event-stream", .body = stream};
  expectUsageForEveryChunking(exchange, tokens(3, 0, 4, "m"));
}

TEST(OpenAiUsage, ErrorAnswerNotReported) {
  Exchange exchange{
      .kind = "openai",
      .request_body = std::string(kChatRequest),
      .status = 429,
      .body =
          R"({"error":{"message":"Rate limit reached for gpt-4o-mini","type":"requests","param":null,"code":"rate_limit_exceeded"}})"};
  EXPECT_EQ(extract(exchange), notReported("gpt-4o-mini"));
}

TEST(OpenAiUsage, ErrorAnswerWithUsageReported) {
  Exchange exchange{.kind = "openai",
                    .status = 500,
                    .body = R"({"model":"m","usage":{"prompt_tokens":12,"completion_tokens":0}})"};
  EXPECT_EQ(extract(exchange), tokens(12, 0, 0, "m"));
}

TEST(OpenAiUsage, BinaryBodyNotReported) {
  std::string audio = "ID3\x04\x00\x00\x00\x00\x00\x23TSSE";
  audio += std::string(4096, '\x7f');
  Exchange exchange{.kind = "openai",
                    .path = "/v1/audio/speech",
                    .request_body = R"({"model":"gpt-4o-mini-tts","input":"Hi","voice":"alloy"})",
                    .content_type = "audio/mpeg",
                    .body = audio};
  EXPECT_EQ(extract(exchange), notReported("gpt-4o-mini-tts"));
}

TEST(OpenAiUsage, MissingContentTypeSniffsBody) {
  Exchange json{
      .kind = "openai", .content_type = "", .body = "\n  " + std::string(kChatCompletionJson)};
  expectUsageForEveryChunking(json, tokens(93, 1024, 46, "gpt-4o-mini-2024-07-18"));

  Exchange stream{.kind = "openai", .content_type = "", .body = chatStreamWithUsage().all()};
  expectUsageForEveryChunking(stream, tokens(12, 0, 34, "gpt-4o-mini-2024-07-18"));
}

TEST(OpenAiUsage, ContentTypeMatchedWithoutCase) {
  Exchange exchange{.kind = "openai",
                    .content_type = " Text/Event-Stream ;charset=UTF-8",
                    .body = chatStreamWithUsage().all()};
  EXPECT_EQ(extract(exchange), tokens(12, 0, 34, "gpt-4o-mini-2024-07-18"));
}

TEST(OpenAiUsage, MultiLineDataJoined) {
  std::string stream =
      "data: {\"model\":\"m\",\ndata: \"choices\":[],\ndata: \"usage\":{\"prompt_tokens\":1\n"
      "data: ,\"completion_tokens\":2}}\n\n";
  Exchange exchange{.kind = "openai", .content_type = "text/event-stream", .body = stream};
  expectUsageForEveryChunking(exchange, tokens(1, 0, 2, "m"));
}

TEST(OpenAiUsage, CommentsAndOtherFieldsIgnored) {
  std::string stream =
      ": keep-alive\n\n"
      "id: 7\nretry: 1000\n: note\ndata:{\"model\":\"m\",\"choices\":[],"
      "\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":2}}\n\n"
      "data: [DONE]\n\n";
  Exchange exchange{.kind = "openai", .content_type = "text/event-stream", .body = stream};
  expectUsageForEveryChunking(exchange, tokens(1, 0, 2, "m"));
}

TEST(OpenAiUsage, SplitInsideNumberDataAndCrLf) {
  std::string stream = withCrLf(chatStreamWithUsage().all());
  Exchange exchange{.kind = "openai", .content_type = "text/event-stream", .body = stream};
  Usage expected = tokens(12, 0, 34, "gpt-4o-mini-2024-07-18");

  std::size_t number =
      stream.find("\"completion_tokens\":34") + std::string("\"completion_tokens\":3").size();
  EXPECT_EQ(extract(exchange, splitAt(stream, number)), expected) << "inside 34";
  std::size_t data = stream.find("data:", stream.find("\"choices\":[]") - 300) + 2;
  EXPECT_EQ(extract(exchange, splitAt(stream, data)), expected) << "inside data:";
  std::size_t cr = stream.find("\r\n") + 1;
  EXPECT_EQ(extract(exchange, splitAt(stream, cr)), expected) << "between CR and LF";
}

// ---------------------------------------------------------------------------------------------
// anthropic

TEST(AnthropicUsage, JsonCountsCacheCreationAsInput) {
  Exchange exchange{.kind = "anthropic",
                    .path = "/v1/messages",
                    .request_body = std::string(kAnthropicRequest),
                    .body = std::string(kAnthropicJson)};
  expectUsageForEveryChunking(exchange, tokens(4146, 0, 503, "claude-sonnet-4-5-20250929"));
}

TEST(AnthropicUsage, StreamTakesLastCumulativeCounts) {
  Exchange exchange{.kind = "anthropic",
                    .path = "/v1/messages",
                    .request_body = std::string(kAnthropicRequest),
                    .content_type = "text/event-stream; charset=utf-8",
                    .body = anthropicStream()};
  expectUsageForEveryChunking(exchange, tokens(472, 1800, 89, "claude-sonnet-4-5-20250929"));
}

TEST(AnthropicUsage, StreamWithCrLfLines) {
  Exchange exchange{.kind = "anthropic",
                    .content_type = "text/event-stream",
                    .body = withCrLf(anthropicStream())};
  expectUsageForEveryChunking(exchange, tokens(472, 1800, 89, "claude-sonnet-4-5-20250929"));
}

TEST(AnthropicUsage, StreamCutAfterMessageStartReportsStartCounts) {
  std::string stream = anthropicStream();
  stream = stream.substr(0, stream.find("event: content_block_delta"));
  Exchange exchange{.kind = "anthropic", .content_type = "text/event-stream", .body = stream};
  EXPECT_EQ(extract(exchange), tokens(472, 1800, 2, "claude-sonnet-4-5-20250929"));
}

TEST(AnthropicUsage, OutputOnlyDeltaKeepsInputFromStart) {
  std::string stream =
      sseEvent(
          R"({"type":"message_start","message":{"model":"claude-haiku-4-5","usage":{"input_tokens":25,"output_tokens":1}}})",
          "message_start") +
      sseEvent(
          R"({"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":15}})",
          "message_delta") +
      sseEvent(R"({"type":"message_stop"})", "message_stop");
  Exchange exchange{.kind = "anthropic", .content_type = "text/event-stream", .body = stream};
  expectUsageForEveryChunking(exchange, tokens(25, 0, 15, "claude-haiku-4-5"));
}

TEST(AnthropicUsage, OverloadedErrorNotReported) {
  Exchange exchange{
      .kind = "anthropic",
      .request_body = std::string(kAnthropicRequest),
      .status = 529,
      .body = R"({"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}})"};
  EXPECT_EQ(extract(exchange), notReported("claude-sonnet-4-5"));
}

TEST(AnthropicUsage, StreamErrorEventNotReported) {
  std::string stream = sseEvent(
      R"({"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}})", "error");
  Exchange exchange{.kind = "anthropic",
                    .request_body = std::string(kAnthropicRequest),
                    .content_type = "text/event-stream",
                    .body = stream};
  EXPECT_EQ(extract(exchange), notReported("claude-sonnet-4-5"));
}

TEST(AnthropicUsage, MalformedJsonNotReported) {
  Exchange exchange{.kind = "anthropic",
                    .request_body = std::string(kAnthropicRequest),
                    .body = std::string(kAnthropicJson.substr(0, 300))};
  EXPECT_EQ(extract(exchange), notReported("claude-sonnet-4-5-20250929"));
}

// ---------------------------------------------------------------------------------------------
// emails, messages, pinecone, requests

Usage emails(int64_t count) {
  Usage usage;
  usage.emails = count;
  usage.requests = 1;
  usage.reported = true;
  return usage;
}

TEST(EmailsUsage, SendCountsOneEmail) {
  Exchange exchange{
      .kind = "emails",
      .path = "/emails",
      .request_body = R"({"from":"a@x.test","to":"b@y.test","subject":"s","text":"t"})",
      .body = R"({"id":"49a3999c-0ce1-4ea6-ab68-afcd6dc2e794"})"};
  expectUsageForEveryChunking(exchange, emails(1));
}

TEST(EmailsUsage, PathWithPrefixAndQueryMatches) {
  for (std::string_view path : {"/v1/resend/emails", "/emails/", "/emails?draft=0"}) {
    Exchange exchange{.kind = "emails", .path = std::string(path), .body = R"({"id":"e1"})"};
    EXPECT_EQ(extract(exchange), emails(1)) << path;
  }
}

TEST(EmailsUsage, BatchCountsRequestItems) {
  Exchange exchange{.kind = "emails",
                    .path = "/emails/batch",
                    .request_body = std::string(kResendBatchRequest),
                    .body = ""};
  EXPECT_EQ(extract(exchange), emails(3));
}

TEST(EmailsUsage, BatchCountsIdsTheAnswerLists) {
  Exchange all_sent{
      .kind = "emails",
      .path = "/emails/batch",
      .request_body = std::string(kResendBatchRequest),
      .body =
          R"({"data":[{"id":"ae2014de-c168-4c61-8267-70d2662a1ce1"},{"id":"faccb7a5-8a28-4e9a-ac64-8da1cc3bc1cb"},{"id":"0c4e4f2b-7f4e-4d53-9e41-63c7e9c6e5a1"}]})"};
  expectUsageForEveryChunking(all_sent, emails(3));

  // Permissive validation sends the valid items only and lists the others under errors.
  Exchange partly_sent{
      .kind = "emails",
      .path = "/emails/batch",
      .request_body = std::string(kResendBatchRequest),
      .body =
          R"({"data":[{"id":"ae2014de-c168-4c61-8267-70d2662a1ce1"},{"id":"faccb7a5-8a28-4e9a-ac64-8da1cc3bc1cb"}],"errors":[{"index":2,"message":"The `to` field is missing."}]})"};
  expectUsageForEveryChunking(partly_sent, emails(2));
}

TEST(EmailsUsage, BatchWithUnreadableBodyNotReported) {
  Exchange exchange{.kind = "emails",
                    .path = "/emails/batch",
                    .request_body = R"({"not":"an array"})",
                    .body = "{}"};
  Usage expected;
  expected.requests = 1;
  EXPECT_EQ(extract(exchange), expected);
}

TEST(EmailsUsage, FailedSendCountsNothing) {
  Exchange exchange{
      .kind = "emails",
      .path = "/emails",
      .status = 422,
      .body =
          R"({"statusCode":422,"message":"Missing `to` field.","name":"missing_required_field"})"};
  Usage expected;
  expected.requests = 1;
  EXPECT_EQ(extract(exchange), expected);
}

TEST(EmailsUsage, OtherEndpointsCountNoEmail) {
  for (auto [method, path] : {std::pair<std::string, std::string>{"GET", "/emails/49a3999c"},
                              {"GET", "/emails"},
                              {"POST", "/emails/49a3999c/cancel"},
                              {"PATCH", "/emails/49a3999c"},
                              {"POST", "/domains"}}) {
    Exchange exchange{.kind = "emails", .method = method, .path = path, .body = "{}"};
    EXPECT_EQ(extract(exchange), emails(0)) << method << " " << path;
  }
}

TEST(MessagesUsage, TwilioSendCountsOneMessage) {
  Exchange exchange{
      .kind = "messages",
      .path = std::string(kTwilioPath),
      .request_body = "To=%2B15005550010&From=%2B15005550006&Body=Your+code+is+314159",
      .status = 201,
      .body = std::string(kTwilioMessageJson)};
  Usage expected;
  expected.messages = 1;
  expected.requests = 1;
  expected.reported = true;
  expectUsageForEveryChunking(exchange, expected);
}

TEST(MessagesUsage, NonSendRequestsCountNoMessage) {
  Usage expected;
  expected.requests = 1;
  expected.reported = true;

  Exchange list{.kind = "messages", .method = "GET", .path = std::string(kTwilioPath)};
  EXPECT_EQ(extract(list), expected);

  Exchange redact{.kind = "messages",
                  .path = "/2010-04-01/Accounts/AC01/Messages/SM0123456789abcdef.json"};
  EXPECT_EQ(extract(redact), expected);
}

TEST(MessagesUsage, FailedSendCountsNothing) {
  Exchange exchange{
      .kind = "messages",
      .path = std::string(kTwilioPath),
      .status = 400,
      .body =
          R"({"code":21211,"message":"The 'To' number +1500555 is not a valid phone number.","more_info":"https://www.twilio.com/docs/errors/21211","status":400})"};
  Usage expected;
  expected.requests = 1;
  EXPECT_EQ(extract(exchange), expected);
}

Usage pinecone(int64_t read_units, int64_t write_units) {
  Usage usage;
  usage.read_units = read_units;
  usage.write_units = write_units;
  usage.requests = 1;
  usage.reported = true;
  return usage;
}

TEST(PineconeUsage, QueryReadsReadUnits) {
  Exchange exchange{.kind = "pinecone",
                    .path = "/query",
                    .request_body = R"({"namespace":"articles","vector":[0.1,0.2,0.3],"topK":2})",
                    .body = std::string(kPineconeQueryJson)};
  expectUsageForEveryChunking(exchange, pinecone(6, 0));
}

TEST(PineconeUsage, SnakeCaseReadUnits) {
  Exchange exchange{
      .kind = "pinecone",
      .path = "/vectors/fetch",
      .body =
          R"({"vectors":{"doc-17":{"id":"doc-17","values":[0.1,0.2]}},"namespace":"articles","usage":{"read_units":1}})"};
  EXPECT_EQ(extract(exchange), pinecone(1, 0));
}

TEST(PineconeUsage, UpsertCountsUpsertedAsWriteUnits) {
  Exchange exchange{
      .kind = "pinecone", .path = "/vectors/upsert", .body = R"({"upsertedCount":50})"};
  expectUsageForEveryChunking(exchange, pinecone(0, 50));
}

TEST(PineconeUsage, ReportedWriteUnitsWinOverUpsertedCount) {
  Exchange exchange{.kind = "pinecone",
                    .path = "/vectors/upsert",
                    .body = R"({"upsertedCount":50,"usage":{"writeUnits":7}})"};
  EXPECT_EQ(extract(exchange), pinecone(0, 7));
}

TEST(PineconeUsage, AnswerWithoutUsageNotReported) {
  Exchange exchange{.kind = "pinecone", .path = "/vectors/delete", .body = "{}"};
  EXPECT_EQ(extract(exchange), notReported());
}

TEST(PineconeUsage, ErrorAnswerNotReported) {
  Exchange exchange{
      .kind = "pinecone",
      .path = "/query",
      .status = 400,
      .body =
          R"({"code":3,"message":"Vector dimension 3 does not match the dimension of the index 1536","details":[]})"};
  EXPECT_EQ(extract(exchange), notReported());
}

TEST(RequestsUsage, CountsOneRequest) {
  Usage expected;
  expected.requests = 1;
  expected.reported = true;
  Exchange ok{.kind = "requests", .method = "GET", .path = "/v1/anything", .body = "whatever"};
  EXPECT_EQ(extract(ok), expected);

  Exchange failed{.kind = "requests", .status = 503, .body = "busy"};
  expected.reported = false;
  EXPECT_EQ(extract(failed), expected);
}

TEST(UsageExtractor, FinishWithoutResponseCountsRequestOnly) {
  for (std::string_view kind :
       {"openai", "anthropic", "emails", "messages", "pinecone", "requests"}) {
    Result<std::unique_ptr<UsageExtractor>> extractor =
        makeUsageExtractor(kind, UsageRequest{"POST", "/emails", ""});
    ASSERT_TRUE(extractor.has_value());
    EXPECT_EQ((*extractor)->finish(), notReported()) << kind;
  }
}

// ---------------------------------------------------------------------------------------------
// Huge bodies: memory stays bounded

// Feeds a body made of `head`, `repeats` copies of `middle` and `tail`, in 64 KiB chunks, and
// returns the most heap the extractor held while reading it.
std::size_t peakHeapWhileFeeding(UsageExtractor& extractor, std::string_view head,
                                 std::string_view middle, std::size_t repeats,
                                 std::string_view tail) {
  std::string chunk;
  while (chunk.size() < 64 * 1024) {
    chunk += middle;
  }
  std::size_t per_chunk = chunk.size() / middle.size();

  std::size_t baseline = heapInUse();
  std::size_t peak = 0;
  extractor.onBody(head);
  for (std::size_t done = 0; done < repeats; done += per_chunk) {
    extractor.onBody(chunk);
    std::size_t in_use = heapInUse();
    peak = std::max(peak, in_use > baseline ? in_use - baseline : 0);
  }
  extractor.onBody(tail);
  return peak;
}

TEST(UsageMemory, HugeJsonBodyReadWithBoundedMemory) {
  Result<std::unique_ptr<UsageExtractor>> extractor =
      makeUsageExtractor("openai", UsageRequest{"POST", "/v1/embeddings", ""});
  ASSERT_TRUE(extractor.has_value());
  (*extractor)->onResponse(200, "application/json");

  // About 64 MiB of embedding numbers, then the usage.
  std::size_t peak = peakHeapWhileFeeding(
      **extractor, R"({"object":"list","data":[{"object":"embedding","index":0,"embedding":[)",
      "0.0023064255,-0.009327292,", 2'600'000,
      R"(1.5]}],"model":"text-embedding-3-large","usage":{"prompt_tokens":8191,"total_tokens":8191}})");

  EXPECT_EQ((*extractor)->finish(), tokens(8191, 0, 0, "text-embedding-3-large"));
  EXPECT_LT(peak, 256u * 1024) << "heap grew with the body";
}

TEST(UsageMemory, HugeStringValueReadWithBoundedMemory) {
  Result<std::unique_ptr<UsageExtractor>> extractor =
      makeUsageExtractor("anthropic", UsageRequest{"POST", "/v1/messages", ""});
  ASSERT_TRUE(extractor.has_value());
  (*extractor)->onResponse(200, "application/json");

  std::size_t peak = peakHeapWhileFeeding(
      **extractor, R"({"model":"claude-opus-4-1","content":[{"type":"text","text":")",
      "All work and no play. ", 2'000'000,
      R"("}],"usage":{"input_tokens":10,"output_tokens":12000}})");

  EXPECT_EQ((*extractor)->finish(), tokens(10, 0, 12000, "claude-opus-4-1"));
  EXPECT_LT(peak, 256u * 1024) << "heap grew with the body";
}

TEST(UsageMemory, HugeEventReadWithBoundedMemory) {
  Result<std::unique_ptr<UsageExtractor>> extractor =
      makeUsageExtractor("openai", UsageRequest{"POST", "/v1/chat/completions", ""});
  ASSERT_TRUE(extractor.has_value());
  (*extractor)->onResponse(200, "text/event-stream");

  // One 40 MiB content delta in a single event, then the usage chunk.
  std::size_t peak = peakHeapWhileFeeding(
      **extractor, R"(data: {"model":"gpt-4o","choices":[{"index":0,"delta":{"content":")",
      "lorem ipsum dolor ", 2'300'000,
      "\"}}]}\n\n" +
          sseEvent(
              R"({"model":"gpt-4o","choices":[],"usage":{"prompt_tokens":9,"completion_tokens":700000}})"));

  EXPECT_EQ((*extractor)->finish(), tokens(9, 0, 700000, "gpt-4o"));
  EXPECT_LT(peak, 256u * 1024) << "heap grew with the event";
}

TEST(UsageMemory, DeepNestingFailsCleanly) {
  std::string body = R"({"model":"m","x":)" + std::string(10000, '[') + std::string(10000, ']') +
                     R"(,"usage":{"prompt_tokens":1,"completion_tokens":2}})";
  Exchange exchange{.kind = "openai", .body = body};
  EXPECT_EQ(extract(exchange), notReported("m"));
}

// ---------------------------------------------------------------------------------------------
// JsonScanner and SseParser

class RecordingVisitor final : public JsonVisitor {
 public:
  void onScalar(const JsonPath& path, const JsonScalar& value) override {
    events.push_back(describe(path) + "=" + describeScalar(value));
  }
  void onContainerBegin(const JsonPath& path, bool is_array) override {
    events.push_back(describe(path) + (is_array ? "[" : "{"));
  }
  void onContainerEnd(const JsonPath& path, bool is_array, std::size_t size) override {
    events.push_back(describe(path) + (is_array ? "]" : "}") + std::to_string(size));
  }
  bool wantsRootMember(std::string_view key) override {
    return !decline_all && !declined.contains(std::string(key));
  }

  std::vector<std::string> events;
  std::set<std::string> declined;  // root members the visitor does not want reported
  bool decline_all = false;

 private:
  static std::string describe(const JsonPath& path) {
    std::string text = "/";
    for (const JsonPathFrame& frame : path.frames()) {
      text += frame.is_array ? std::to_string(frame.index) : frame.key;
      text += "/";
    }
    return text;
  }

  static std::string describeScalar(const JsonScalar& value) {
    switch (value.type) {
      case JsonScalar::Type::kString:
        return "\"" + std::string(value.text) + (value.truncated ? "\"..." : "\"");
      case JsonScalar::Type::kInteger:
        return std::to_string(value.integer);
      case JsonScalar::Type::kNumber:
        return "number";
      case JsonScalar::Type::kBool:
        return value.boolean ? "true" : "false";
      case JsonScalar::Type::kNull:
        return "null";
    }
    return "?";
  }
};

// Records whether the named path was seen with a matching is() call.
class PathProbe final : public JsonVisitor {
 public:
  explicit PathProbe(std::function<bool(const JsonPath&)> matches) : matches_(std::move(matches)) {}

  void onScalar(const JsonPath& path, const JsonScalar& value) override {
    if (matches_(path)) {
      hits.push_back(value.isString() ? std::string(value.text) : std::to_string(value.integer));
    }
  }

  std::vector<std::string> hits;

 private:
  std::function<bool(const JsonPath&)> matches_;
};

std::vector<std::string> probe(std::string_view json,
                               std::function<bool(const JsonPath&)> matches) {
  PathProbe visitor(std::move(matches));
  JsonScanner scanner(visitor);
  scanner.write(json);
  scanner.finish();
  return visitor.hits;
}

TEST(JsonScanner, EventsCarryPaths) {
  RecordingVisitor visitor;
  JsonScanner scanner(visitor);
  std::string long_text(kMaxJsonStringBytes + 10, 't');
  scanner.write(R"({"a":[1,{"b":null}],"s":")" + long_text + R"(","t":true,"e":{}})");
  ASSERT_EQ(scanner.finish(), JsonScanner::State::kComplete);
  EXPECT_EQ(visitor.events,
            (std::vector<std::string>{"/{", "/a/[", "/a/0/=1", "/a/1/{", "/a/1/b/=null", "/a/1/}1",
                                      "/a/]2",
                                      "/s/=\"" + long_text.substr(0, kMaxJsonStringBytes) + "\"...",
                                      "/t/=true", "/e/{", "/e/}0", "/}4"}));
}

TEST(JsonScanner, DeclinedRootMembersNotReported) {
  const std::string document =
      R"({"id":"x","choices":[{"message":{"content":"hi","n":[1,2,{"k":null}]}},3],)"
      R"("model":"m","big":{"a":{"b":[true,false,1.5]}},"usage":{"t":5,"choices":7}})";
  const std::vector<std::string> expected = {
      "/{", "/model/=\"m\"", "/usage/{", "/usage/t/=5", "/usage/choices/=7", "/usage/}2", "/}5"};

  RecordingVisitor whole;
  whole.declined = {"id", "choices", "big"};
  JsonScanner scanner(whole);
  scanner.write(document);
  ASSERT_EQ(scanner.finish(), JsonScanner::State::kComplete);
  EXPECT_EQ(whole.events, expected);

  // The same document one byte per write: strings, numbers and keys split inside the skipped
  // members end the skip at the same place.
  RecordingVisitor split;
  split.declined = whole.declined;
  JsonScanner bytewise(split);
  for (char c : document) {
    bytewise.write(std::string_view(&c, 1));
  }
  ASSERT_EQ(bytewise.finish(), JsonScanner::State::kComplete);
  EXPECT_EQ(split.events, expected);
}

TEST(JsonScanner, OverlongRootKeyAlwaysReported) {
  RecordingVisitor visitor;
  visitor.decline_all = true;
  JsonScanner scanner(visitor);
  const std::string key(kMaxJsonKeyBytes + 1, 'k');
  scanner.write(R"({")" + key + R"(":1,"short":2})");
  ASSERT_EQ(scanner.finish(), JsonScanner::State::kComplete);
  EXPECT_EQ(visitor.events,
            (std::vector<std::string>{"/{", "/" + key.substr(0, kMaxJsonKeyBytes) + "/=1", "/}2"}));
}

TEST(JsonScanner, PathsMatchKeysAndArrayElements) {
  std::string_view json = R"({"a":{"b":[{"c":1},{"c":2}],"c":3},"c":4})";
  EXPECT_EQ(probe(json,
                  [](const JsonPath& p) {
                    return p.is({"a", "b", "[]", "c"});
                  }),
            (std::vector<std::string>{"1", "2"}));
  EXPECT_EQ(probe(json, [](const JsonPath& p) { return p.is({"c"}); }),
            (std::vector<std::string>{"4"}));
  EXPECT_EQ(
      probe(json, [](const JsonPath& p) { return p.startsWith({"a"}) && p.lastKey() == "c"; }),
      (std::vector<std::string>{"1", "2", "3"}));
  EXPECT_EQ(probe(json,
                  [](const JsonPath& p) {
                    return p.suffix(1).is({"b", "[]", "c"});
                  }),
            (std::vector<std::string>{"1", "2"}));
}

TEST(JsonScanner, OverlongKeyMatchesNothing) {
  std::string long_key(kMaxJsonKeyBytes + 1, 'k');
  std::string json =
      R"({")" + long_key + R"(":1,")" + long_key.substr(0, kMaxJsonKeyBytes) + R"(":2})";
  EXPECT_EQ(
      probe(json, [&](const JsonPath& p) { return p.is({long_key.substr(0, kMaxJsonKeyBytes)}); }),
      (std::vector<std::string>{"2"}));
}

TEST(JsonScanner, EscapesSplitAcrossWrites) {
  std::string_view json = R"({"model":"caf\u00e9-\"x\""})";
  for (std::size_t at = 0; at <= json.size(); ++at) {
    PathProbe visitor([](const JsonPath& p) { return p.is({"model"}); });
    JsonScanner scanner(visitor);
    scanner.write(json.substr(0, at));
    scanner.write(json.substr(at));
    ASSERT_EQ(scanner.finish(), JsonScanner::State::kComplete) << at;
    ASSERT_EQ(visitor.hits, (std::vector<std::string>{"caf\xc3\xa9-\"x\""})) << at;
  }
}

TEST(JsonScanner, NumbersClassified) {
  class Types final : public JsonVisitor {
   public:
    void onScalar(const JsonPath&, const JsonScalar& value) override {
      types.push_back(value.type);
      integers.push_back(value.integer);
    }
    std::vector<JsonScalar::Type> types;
    std::vector<int64_t> integers;
  } types;
  JsonScanner scanner(types);
  scanner.write("[7, -3, 5.0, 2.5, 18446744073709551615, 1e400, 9223372036854775807]");
  ASSERT_EQ(scanner.finish(), JsonScanner::State::kComplete);
  using Type = JsonScalar::Type;
  EXPECT_EQ(types.types,
            (std::vector<Type>{Type::kInteger, Type::kInteger, Type::kInteger, Type::kNumber,
                               Type::kNumber, Type::kNumber, Type::kInteger}));
  EXPECT_EQ(types.integers[0], 7);
  EXPECT_EQ(types.integers[1], -3);
  EXPECT_EQ(types.integers[2], 5);
  EXPECT_EQ(types.integers[6], INT64_MAX);
}

TEST(JsonScanner, StatesReportCompletenessAndErrors) {
  RecordingVisitor visitor;
  JsonScanner scanner(visitor);

  scanner.write("{\"a\":1}  \n");
  EXPECT_EQ(scanner.state(), JsonScanner::State::kComplete);
  EXPECT_EQ(scanner.finish(), JsonScanner::State::kComplete);

  scanner.reset();
  scanner.write("{\"a\":1} x");
  EXPECT_EQ(scanner.state(), JsonScanner::State::kFailed);

  scanner.reset();
  scanner.write("{\"a\":");
  EXPECT_EQ(scanner.state(), JsonScanner::State::kParsing);
  EXPECT_EQ(scanner.finish(), JsonScanner::State::kFailed);

  scanner.reset();
  scanner.write("42");
  EXPECT_EQ(scanner.finish(), JsonScanner::State::kComplete);

  scanner.reset();
  EXPECT_EQ(scanner.finish(), JsonScanner::State::kFailed);
}

TEST(JsonScanner, DepthLimitEnforced) {
  RecordingVisitor visitor;
  JsonScanner fits(visitor);
  fits.write(std::string(kMaxJsonDepth, '[') + std::string(kMaxJsonDepth, ']'));
  EXPECT_EQ(fits.finish(), JsonScanner::State::kComplete);

  JsonScanner too_deep(visitor);
  too_deep.write(std::string(kMaxJsonDepth + 1, '[') + std::string(kMaxJsonDepth + 1, ']'));
  EXPECT_EQ(too_deep.finish(), JsonScanner::State::kFailed);
}

TEST(JsonScanner, InvalidUtf8InStringsAccepted) {
  PathProbe visitor([](const JsonPath& p) { return p.is({"n"}); });
  JsonScanner scanner(visitor);
  scanner.write("{\"t\":\"\xc3\x28\",\"n\":5}");
  EXPECT_EQ(scanner.finish(), JsonScanner::State::kComplete);
  EXPECT_EQ(visitor.hits, (std::vector<std::string>{"5"}));
}

class RecordingSseHandler final : public SseParser::Handler {
 public:
  void onDataLine(bool first) override { log += first ? "<data>" : "<more>"; }
  void onData(std::string_view bytes) override { log += bytes; }
  void onEventEnd(std::string_view type) override { log += "<end:" + std::string(type) + ">"; }

  std::string log;
};

std::string sseLog(std::string_view stream, std::size_t chunk_size) {
  RecordingSseHandler handler;
  SseParser parser(handler);
  for (std::size_t at = 0; at < stream.size(); at += chunk_size) {
    parser.parse(stream.substr(at, chunk_size));
  }
  return handler.log;
}

TEST(SseParser, FieldsFollowTheEventStreamRules) {
  std::string_view stream =
      ": comment\n"
      "event: first\n"
      "data:no-space\n"
      "data:  two-spaces\n"
      "id: 1\n"
      "\n"
      "data\n"
      "\n"
      "retry: 10\n"
      "\n"
      "datax: ignored\n"
      "event: a\nevent: b\n"
      "data: last\n"
      "\n";
  std::string expected =
      "<data>no-space<more> two-spaces<end:first>"
      "<data><end:>"
      "<end:>"
      "<data>last<end:b>";
  for (std::size_t size : {1u, 2u, 3u, 7u, 100u}) {
    EXPECT_EQ(sseLog(stream, size), expected) << "chunk size " << size;
  }
}

TEST(SseParser, LineEndingsEquivalent) {
  std::string lf = "event: e\ndata: a\ndata: b\n\ndata: c\n\n";
  std::string expected = "<data>a<more>b<end:e><data>c<end:>";
  for (const std::string& stream : {lf, withCrLf(lf), withCr(lf)}) {
    for (std::size_t size : {1u, 2u, 5u, 64u}) {
      EXPECT_EQ(sseLog(stream, size), expected) << "chunk size " << size;
    }
  }
}

TEST(SseParser, ParseEventStopsAfterEachEvent) {
  RecordingSseHandler handler;
  SseParser parser(handler);
  std::string_view stream = "data: a\r\n\r\ndata: b\n\n";
  std::size_t first = parser.parseEvent(stream);
  EXPECT_EQ(stream.substr(0, first), "data: a\r\n\r");
  EXPECT_TRUE(parser.lineFeedPending());
  EXPECT_FALSE(parser.inEvent());
  std::size_t second = parser.parseEvent(stream.substr(first));
  EXPECT_EQ(stream.substr(first, second), "\ndata: b\n\n");
  EXPECT_EQ(handler.log, "<data>a<end:><data>b<end:>");
}

TEST(SseParser, LongFieldNameIgnored) {
  std::string stream = std::string(kMaxSseFieldNameBytes + 4, 'd') + ": x\ndata: y\n\n";
  EXPECT_EQ(sseLog(stream, 3), "<data>y<end:>");
}

// ---------------------------------------------------------------------------------------------
// stream_options injection

TEST(AddStreamUsageOption, AppendsWhenAbsent) {
  std::optional<std::string> rewritten = addStreamUsageOption(kStreamedChatRequest);
  ASSERT_TRUE(rewritten.has_value());
  EXPECT_EQ(
      *rewritten,
      R"({"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"Say hello"}],"stream_options":{"include_usage":true}})");
}

TEST(AddStreamUsageOption, KeepsEveryOtherByte) {
  std::string_view body =
      "{\n  \"temperature\": 0.70,\n  \"stream\" : true,\n  \"n\": 1E0,\n"
      "  \"messages\": [{\"role\": \"user\", \"content\": \"caf\\u00e9 \xf0\x9f\x98\x80\"}]\n}\n";
  std::optional<std::string> rewritten = addStreamUsageOption(body);
  ASSERT_TRUE(rewritten.has_value());
  EXPECT_EQ(*rewritten,
            "{\n  \"temperature\": 0.70,\n  \"stream\" : true,\n  \"n\": 1E0,\n"
            "  \"messages\": [{\"role\": \"user\", \"content\": \"caf\\u00e9 \xf0\x9f\x98\x80\"}]\n"
            ",\"stream_options\":{\"include_usage\":true}}\n");
}

TEST(AddStreamUsageOption, AddsToExistingOptionsObject) {
  std::optional<std::string> rewritten = addStreamUsageOption(
      R"({"model":"gpt-4o-mini","stream":true,"stream_options":{"include_obfuscation":false},"messages":[]})");
  ASSERT_TRUE(rewritten.has_value());
  EXPECT_EQ(
      *rewritten,
      R"({"model":"gpt-4o-mini","stream":true,"stream_options":{"include_usage":true,"include_obfuscation":false},"messages":[]})");

  std::optional<std::string> empty =
      addStreamUsageOption(R"({"stream":true,"stream_options": { } })");
  ASSERT_TRUE(empty.has_value());
  EXPECT_EQ(*empty, R"({"stream":true,"stream_options": {"include_usage":true } })");
}

TEST(AddStreamUsageOption, ReplacesNullOptions) {
  std::optional<std::string> rewritten =
      addStreamUsageOption(R"({"stream":true,"stream_options":null,"model":"m"})");
  ASSERT_TRUE(rewritten.has_value());
  EXPECT_EQ(*rewritten, R"({"stream":true,"stream_options":{"include_usage":true},"model":"m"})");
}

TEST(AddStreamUsageOption, FindsOptionsAtAnyOffset) {
  // Moves stream_options across the scanner's slice boundaries.
  for (std::size_t padding = 0; padding < 200; ++padding) {
    std::string prefix = R"({"model":")" + std::string(padding, 'p') + R"(","stream":true,)";
    std::string suffix = R"(,"messages":[{"role":"user","content":"x"}]})";
    std::optional<std::string> object =
        addStreamUsageOption(prefix + R"("stream_options":{"x":1})" + suffix);
    ASSERT_TRUE(object.has_value()) << padding;
    ASSERT_EQ(*object, prefix + R"("stream_options":{"include_usage":true,"x":1})" + suffix)
        << padding;

    std::optional<std::string> null =
        addStreamUsageOption(prefix + R"("stream_options":null)" + suffix);
    ASSERT_TRUE(null.has_value()) << padding;
    ASSERT_EQ(*null, prefix + R"("stream_options":{"include_usage":true})" + suffix) << padding;
  }
}

TEST(AddStreamUsageOption, ClientTrueKept) {
  EXPECT_EQ(addStreamUsageOption(
                R"({"stream":true,"stream_options":{"include_usage":true},"messages":[]})"),
            std::nullopt);
}

TEST(AddStreamUsageOption, ClientFalseTurnedTrue) {
  EXPECT_EQ(addStreamUsageOption(
                R"({"stream":true,"stream_options":{"include_usage":false},"messages":[]})"),
            R"({"stream":true,"stream_options":{"include_usage":true},"messages":[]})");
  EXPECT_EQ(
      addStreamUsageOption(
          R"({"stream":true,"stream_options":{"x":1, "include_usage" :  false },"model":"m"})"),
      R"({"stream":true,"stream_options":{"x":1, "include_usage" :  true },"model":"m"})");
  // Across the scanner's slice boundaries.
  for (std::size_t padding = 0; padding < 140; ++padding) {
    std::string prefix = R"({"model":")" + std::string(padding, 'p') + R"(","stream":true,)";
    std::optional<std::string> rewritten =
        addStreamUsageOption(prefix + R"("stream_options":{"include_usage":false}})");
    ASSERT_TRUE(rewritten.has_value()) << padding;
    ASSERT_EQ(*rewritten, prefix + R"("stream_options":{"include_usage":true}})") << padding;
  }
}

TEST(AddStreamUsageOption, OtherIncludeUsageKept) {
  for (std::string_view body :
       {std::string_view(R"({"stream":true,"stream_options":{"include_usage":0}})"),
        std::string_view(R"({"stream":true,"stream_options":{"include_usage":null}})"),
        std::string_view(R"({"stream":true,"stream_options":{"include_usage":"false"}})"),
        std::string_view(R"({"stream":true,"stream_options":{"include_usage":{}}})"),
        std::string_view(
            R"({"stream":true,"stream_options":{"include_usage":false,"include_usage":false}})")}) {
    EXPECT_EQ(addStreamUsageOption(body), std::nullopt) << body;
  }
}

TEST(AddStreamUsageOption, NoRewriteWithoutStreaming) {
  EXPECT_EQ(addStreamUsageOption(kChatRequest), std::nullopt);
  EXPECT_EQ(addStreamUsageOption(R"({"stream":false,"messages":[]})"), std::nullopt);
  EXPECT_EQ(addStreamUsageOption(R"({"stream":"true","messages":[]})"), std::nullopt);
  EXPECT_EQ(addStreamUsageOption(R"({"stream":1})"), std::nullopt);
  EXPECT_EQ(addStreamUsageOption(R"({"options":{"stream":true}})"), std::nullopt);
}

TEST(AddStreamUsageOption, InvalidBodiesNotRewritten) {
  for (std::string_view body :
       {std::string_view(""), std::string_view("[{\"stream\":true}]"),
        std::string_view("\"stream\""), std::string_view(R"({"stream":true)"),
        std::string_view(R"({"stream":true,"messages":[}])"),
        std::string_view(R"({"stream":true} trailing)"),
        std::string_view(R"({"stream":true,"stream_options":"yes"})"),
        std::string_view(R"({"stream":true,"stream_options":[]})"),
        std::string_view(R"({"stream":true,"stream_options":{},"stream_options":{}})"),
        std::string_view(R"({"stream":true,"content":"emoji \ud83d tail"})")}) {
    EXPECT_EQ(addStreamUsageOption(body), std::nullopt) << body;
  }
}

TEST(AddStreamUsageOption, RewrittenBodyParsesWithIncludeUsage) {
  std::optional<std::string> rewritten = addStreamUsageOption(kStreamedChatRequest);
  ASSERT_TRUE(rewritten.has_value());
  bool include_usage = false;
  class Reader final : public JsonVisitor {
   public:
    explicit Reader(bool& out) : out_(out) {}
    void onScalar(const JsonPath& path, const JsonScalar& value) override {
      if (path.is({"stream_options", "include_usage"}) && value.type == JsonScalar::Type::kBool) {
        out_ = value.boolean;
      }
    }

   private:
    bool& out_;
  } reader(include_usage);
  JsonScanner scanner(reader);
  scanner.write(*rewritten);
  EXPECT_EQ(scanner.finish(), JsonScanner::State::kComplete);
  EXPECT_TRUE(include_usage);
}

// ---------------------------------------------------------------------------------------------
// UsageChunkFilter

std::string filterChunks(const Chunks& chunks) {
  UsageChunkFilter filter;
  std::string client;
  for (std::string_view chunk : chunks) {
    filter.write(chunk, client);
  }
  filter.finish(client);
  return client;
}

void expectFilteredForEveryChunking(const std::string& upstream, const std::string& expected) {
  ASSERT_EQ(filterChunks({upstream}), expected) << "whole stream";

  for (std::size_t at = 0; at <= upstream.size(); ++at) {
    UsageChunkFilter filter;
    std::string client;
    filter.write(upstream.substr(0, at), client);
    ASSERT_TRUE(std::string_view(expected).starts_with(client))
        << "bytes sent early that the final stream does not have, split at " << at;
    ASSERT_LE(filter.heldBytes(), at) << at;
    filter.write(upstream.substr(at), client);
    filter.finish(client);
    ASSERT_EQ(client, expected) << "split at byte " << at;
  }

  ASSERT_EQ(filterChunks(byteChunks(upstream)), expected) << "one byte at a time";

  for (uint32_t seed = 1; seed <= 500; ++seed) {
    ASSERT_EQ(filterChunks(randomChunks(upstream, seed, 40)), expected)
        << "random chunking, seed " << seed;
  }
}

TEST(UsageChunkFilter, RemovesOnlyTheUsageChunk) {
  ChatStream stream = chatStreamWithUsage();
  expectFilteredForEveryChunking(stream.all(), stream.withoutUsageEvent());
}

TEST(UsageChunkFilter, RemovesUsageChunkWithCrLf) {
  ChatStream stream = chatStreamWithUsage();
  expectFilteredForEveryChunking(withCrLf(stream.all()), withCrLf(stream.withoutUsageEvent()));
}

TEST(UsageChunkFilter, RemovesUsageChunkWithCr) {
  ChatStream stream = chatStreamWithUsage();
  expectFilteredForEveryChunking(withCr(stream.all()), withCr(stream.withoutUsageEvent()));
}

TEST(UsageChunkFilter, RemovesCrLfUsageChunkAfterLfEvent) {
  // The LF that completes the usage chunk's last CR LF goes with it, and no other byte does.
  std::string content = sseEvent(chatChunk(R"([{"index":0,"delta":{"content":"a"}}])", "null"));
  std::string usage_chunk = withCrLf(sseEvent(chatChunk("[]", kStreamUsage)));
  std::string done = withCrLf(sseEvent("[DONE]"));
  expectFilteredForEveryChunking(usage_chunk + done, done);
  expectFilteredForEveryChunking(content + usage_chunk + done, content + done);
}

TEST(UsageChunkFilter, ClientStreamStillEndsWithDone) {
  ChatStream stream = chatStreamWithUsage();
  std::string client = filterChunks(randomChunks(stream.all(), 7, 64));
  EXPECT_TRUE(client.ends_with("data: [DONE]\n\n"));
  EXPECT_EQ(client.find("\"choices\":[]"), std::string::npos);
  EXPECT_EQ(client.size(), stream.all().size() - stream.events[stream.usage_event].size());
}

TEST(UsageChunkFilter, PassesContentWithoutHolding) {
  ChatStream stream = chatStreamWithUsage();
  std::string upstream = stream.all();
  std::size_t offset = 0;
  for (std::size_t i = 0; i < stream.usage_event; ++i) {
    // Once an event shows a choice, it cannot be the usage chunk: all its bytes so far go out.
    std::size_t decided = offset + stream.events[i].find("\"choices\":[{") + 12;
    UsageChunkFilter filter;
    std::string client;
    filter.write(std::string_view(upstream).substr(0, decided), client);
    EXPECT_EQ(filter.heldBytes(), 0u) << "event " << i;
    EXPECT_EQ(client, upstream.substr(0, decided)) << "event " << i;
    offset += stream.events[i].size();
  }

  UsageChunkFilter filter;
  std::string client;
  std::size_t done_start = upstream.find("data: [DONE]");
  filter.write(std::string_view(upstream).substr(0, done_start + 8), client);
  EXPECT_EQ(filter.heldBytes(), 0u);
  EXPECT_EQ(client, stream.withoutUsageEvent().substr(0, client.size()));
  EXPECT_TRUE(client.ends_with("data: [D"));
}

TEST(UsageChunkFilter, HoldsOnlyTheUndecidedEvent) {
  ChatStream stream = chatStreamWithUsage();
  std::string upstream = stream.all();
  std::size_t usage_start = upstream.find(stream.events[stream.usage_event]);
  UsageChunkFilter filter;
  std::string client;
  filter.write(std::string_view(upstream).substr(0, usage_start + 50), client);
  EXPECT_EQ(filter.heldBytes(), 50u);
  EXPECT_EQ(client, upstream.substr(0, usage_start));
}

TEST(UsageChunkFilter, KeepsChunksThatAreNotUsageOnly) {
  std::vector<std::string> not_usage_only = {
      // usage null with empty choices
      sseEvent(chatChunk("[]", "null")),
      // usage together with a choice
      sseEvent(chatChunk(R"([{"index":0,"delta":{},"finish_reason":"stop"}])", kStreamUsage)),
      // usage without a choices member
      sseEvent(R"({"id":"x","usage":{"prompt_tokens":1}})"),
      // choices not an array
      sseEvent(R"({"choices":{},"usage":{"prompt_tokens":1}})"),
      // usage not an object
      sseEvent(R"({"choices":[],"usage":[1]})"),
      // not an object
      sseEvent(R"([{"choices":[],"usage":{}}])"),
      // broken JSON
      sseEvent(R"({"choices":[],"usage":{"prompt_tokens":1})"),
      // trailing data after the object
      "data: {\"choices\":[],\"usage\":{}}\ndata: x\n\n",
      // comment-only and blank events
      ": keep-alive\n\n",
      "\n",
      sseEvent("[DONE]"),
  };
  for (const std::string& event : not_usage_only) {
    expectFilteredForEveryChunking(event, event);
  }
}

TEST(UsageChunkFilter, RemovesUsageChunkWithOtherFields) {
  std::string usage_chunk =
      "id: 41\nevent: message\ndata: " + chatChunk("[]", kStreamUsage) + "\n\n";
  std::string upstream = sseEvent(chatChunk(R"([{"index":0,"delta":{"content":"a"}}])", "null")) +
                         usage_chunk + sseEvent("[DONE]");
  expectFilteredForEveryChunking(
      upstream,
      sseEvent(chatChunk(R"([{"index":0,"delta":{"content":"a"}}])", "null")) + sseEvent("[DONE]"));
}

TEST(UsageChunkFilter, UnterminatedUsageChunkAtEndRemoved) {
  std::string content = sseEvent(chatChunk(R"([{"index":0,"delta":{"content":"a"}}])", "null"));
  std::string upstream = content + "data: " + chatChunk("[]", kStreamUsage) + "\n";
  expectFilteredForEveryChunking(upstream, content);
}

TEST(UsageChunkFilter, OversizedUndecidedEventPassedOn) {
  std::string big = R"({"id":")" + std::string(UsageChunkFilter::kMaxHeldBytes * 2, 'x') +
                    R"(","choices":[],"usage":{"prompt_tokens":1}})";
  std::string upstream = sseEvent(big) + sseEvent("[DONE]");
  UsageChunkFilter filter;
  std::string client;
  std::size_t max_held = 0;
  for (std::string_view chunk : randomChunks(upstream, 3, 4096)) {
    filter.write(chunk, client);
    max_held = std::max(max_held, filter.heldBytes());
  }
  filter.finish(client);
  EXPECT_EQ(client, upstream);
  EXPECT_LE(max_held, UsageChunkFilter::kMaxHeldBytes);
}

TEST(UsageChunkFilter, ClientIncludeUsageStreamUnfiltered) {
  // A client that set include_usage gets no rewrite, so the proxy relays without a filter.
  std::string_view request =
      R"({"model":"gpt-4o-mini","stream":true,"stream_options":{"include_usage":true},"messages":[]})";
  EXPECT_EQ(addStreamUsageOption(request), std::nullopt);

  ChatStream stream = chatStreamWithUsage();
  Exchange exchange{.kind = "openai",
                    .request_body = std::string(request),
                    .content_type = "text/event-stream",
                    .body = stream.all()};
  EXPECT_EQ(extract(exchange), tokens(12, 0, 34, "gpt-4o-mini-2024-07-18"));
}

TEST(UsageChunkFilter, InjectedUsageMeteredAndHidden) {
  // A streamed request without stream_options is rewritten, so the upstream sends the usage
  // chunk. The client still gets the stream it requested, and the meter reads 12/34.
  std::optional<std::string> rewritten = addStreamUsageOption(kStreamedChatRequest);
  ASSERT_TRUE(rewritten.has_value());
  EXPECT_NE(rewritten->find(R"("stream_options":{"include_usage":true})"), std::string::npos);

  ChatStream stream = chatStreamWithUsage();
  std::string upstream = stream.all();
  Result<std::unique_ptr<UsageExtractor>> extractor =
      makeUsageExtractor("openai", UsageRequest{"POST", "/v1/chat/completions", *rewritten});
  ASSERT_TRUE(extractor.has_value());
  (*extractor)->onResponse(200, "text/event-stream; charset=utf-8");
  UsageChunkFilter filter;
  std::string client;
  for (std::string_view chunk : randomChunks(upstream, 11, 33)) {
    (*extractor)->onBody(chunk);
    filter.write(chunk, client);
  }
  filter.finish(client);

  EXPECT_EQ((*extractor)->finish(), tokens(12, 0, 34, "gpt-4o-mini-2024-07-18"));
  EXPECT_EQ(client, stream.withoutUsageEvent());
  EXPECT_TRUE(client.ends_with("data: [DONE]\n\n"));
}

}  // namespace
}  // namespace keystore::metering
