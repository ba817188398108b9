#include "admin/router.h"

namespace keystore::admin {

std::vector<std::string_view> templateSegments(std::string_view path_template) {
  std::vector<std::string_view> segments;
  size_t start = path_template.starts_with('/') ? 1 : 0;
  while (start <= path_template.size()) {
    size_t end = path_template.find('/', start);
    if (end == std::string_view::npos) {
      end = path_template.size();
    }
    segments.push_back(path_template.substr(start, end - start));
    start = end + 1;
  }
  return segments;
}

bool matchTemplate(std::string_view path_template, std::span<const std::string> segments,
                   std::vector<std::string>& params) {
  params.clear();
  std::vector<std::string_view> expected = templateSegments(path_template);
  if (expected.size() != segments.size()) {
    return false;
  }
  for (size_t i = 0; i < expected.size(); ++i) {
    if (expected[i] == "{}") {
      // A captured segment must name something: "/projects//agents" is not a project.
      if (segments[i].empty()) {
        params.clear();
        return false;
      }
      params.push_back(segments[i]);
      continue;
    }
    if (expected[i] != segments[i]) {
      params.clear();
      return false;
    }
  }
  return true;
}

}  // namespace keystore::admin
