// Page: limit and offset of a list read from the store. A plain value.
// Thread-safety: none needed.
#pragma once

#include <cstdint>

namespace reprise {

struct Page {
  int64_t limit = 100;  // 1..1000
  int64_t offset = 0;
};

}  // namespace reprise
