// Files compiled into a binary (cmake/Embed.cmake): the web UI, the demo spec.
// Immutable static data; thread-safe.
#pragma once

#include <cstddef>
#include <string_view>

namespace reprise {

struct EmbeddedFile {
  const char* path;  // relative to the embedded directory, '/'-separated
  const char* data;
  size_t size;
};

}  // namespace reprise
