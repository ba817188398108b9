// The wire text of HTTP/1.1 message heads that the proxy writes itself.
//
// The relay writes each head into one reusable string and sends it together with the body in
// a single gather write, instead of walking Beast's serializer buffers for every write. The
// text is what Beast's serializer writes for the same header: the start line, then each field
// as `name: value` in order, each line ending in CRLF. Field names and values come from a
// parsed or validated Beast header, so no character here needs escaping.
#pragma once

#include <boost/beast/http/message.hpp>
#include <string>
#include <string_view>

namespace keystore::proxy {

void appendField(std::string& out, std::string_view name, std::string_view value);
inline void endHead(std::string& out) {
  out.append("\r\n");
}

// Appends `HTTP/x.y` for a version in Beast's form (11 for 1.1).
void appendVersion(std::string& out, unsigned version);
// Appends `status reason` CRLF with the standard reason phrase of `status`, or an empty one
// for a code without a standard phrase (RFC 9112 allows an empty reason-phrase).
void appendStatusAndReason(std::string& out, unsigned status);

template <typename FieldsT>
void appendFields(std::string& out, const FieldsT& fields) {
  for (const auto& field : fields) {
    appendField(out, field.name_string(), field.value());
  }
}

// Appends `METHOD target HTTP/x.y` CRLF, the fields of `header` and the blank line that ends
// the head.
template <typename FieldsT>
void appendRequestHead(std::string& out, const boost::beast::http::header<true, FieldsT>& header) {
  out.append(header.method_string());
  out.push_back(' ');
  out.append(header.target());
  out.push_back(' ');
  appendVersion(out, header.version());
  out.append("\r\n");
  appendFields(out, header);
  endHead(out);
}

// Appends `HTTP/x.y status reason` CRLF with `version` instead of the header's own (the client's
// version, which may differ from the upstream's), and then the fields. The caller adds any
// further fields with appendField and ends the head with endHead. The header's own reason
// phrase is never written: an upstream's phrase is free text that could echo the injected
// credential, and clients do not read it.
template <typename FieldsT>
void appendStatusLineAndFields(std::string& out,
                               const boost::beast::http::header<false, FieldsT>& header,
                               unsigned version) {
  appendVersion(out, version);
  out.push_back(' ');
  appendStatusAndReason(out, header.result_int());
  appendFields(out, header);
}

// The size line of a chunk of `size` bytes in the chunked transfer coding: lowercase hex and
// CRLF, held inline so that framing a chunk allocates nothing.
class ChunkSizeLine {
 public:
  explicit ChunkSizeLine(size_t size);
  std::string_view text() const { return std::string_view(text_, length_); }

 private:
  char text_[20];  // 16 hex digits of a 64-bit size and CRLF
  size_t length_ = 0;
};

}  // namespace keystore::proxy
