// The web page's files (src/serve/web/), compiled into the library at build time by
// cmake/embed_files.cmake, so that the binary serves them with no files beside it.
#pragma once

#include <cstddef>
#include <span>
#include <string_view>

namespace illada::serve {

struct WebAsset {
  const char* name;  // file name, e.g. "index.html"
  const char* data;
  size_t size;
};

std::span<const WebAsset> web_assets();

// The asset with this file name, or nullptr.
const WebAsset* find_web_asset(std::string_view name);

// The Content-Type for a file name's extension (html, js, css, svg, png; else octet-stream).
const char* web_content_type(std::string_view name);

}  // namespace illada::serve
